import sys
from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog_name="mobile-sdk"))
