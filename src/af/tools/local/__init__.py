"""The local facility: every component of the hub on 127.0.0.1, state in one folder (`make up` / `make down`)."""
