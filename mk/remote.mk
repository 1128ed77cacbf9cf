# Remote reading (physlite.io): the Debian servers the tests start on loopback, and the remote benchmark.
APT_PACKAGES += nginx-light openssl xrootd-server xrootd-client iptables libnetfilter-queue-dev
