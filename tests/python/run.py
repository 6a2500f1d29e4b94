"""run.py TEST_FILE [MODULE...] - run one pytest file for ctest.

Exits 77 (ctest's "skipped", with the reason printed) when pytest or one of
the named modules (e.g. torch) is missing, or when libdescent was built with
sanitizers (a sanitized shared library cannot be loaded into an unsanitized
python). CI installs them (scripts/install-deps.sh --ci), so there they run.
"""
import importlib
import os
import sys

SKIP = 77


def main():
    test, modules = sys.argv[1], sys.argv[2:]
    if os.environ.get("DESCENT_SANITIZED") == "ON":
        print("skipped: %s: libdescent is built with sanitizers" % os.path.basename(test))
        return SKIP
    for m in ["pytest"] + modules:
        try:
            importlib.import_module(m)
        except ImportError as e:
            print("skipped: %s needs the python module %s (%s); Debian: apt-get install "
                  "python3-%s" % (os.path.basename(test), m, e, m))
            return SKIP
    import pytest
    return pytest.main(["-q", "-p", "no:cacheprovider", test])


if __name__ == "__main__":
    sys.exit(main())
