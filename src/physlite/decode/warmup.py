"""Compile every decode kernel into numba's on-disk cache, for a generic CPU, at install time."""


def main() -> None:
    """Entry point of `python -m physlite.decode.warmup` (run by `make venv` and the image build)."""
    print("physlite: no kernels to compile yet")


if __name__ == "__main__":
    main()
