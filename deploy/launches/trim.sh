#!/bin/sh
# Trim the launches job's installed Python packages (a `pip install --target` directory)
# down to what the job loads. Run by deploy/launches/Dockerfile and by
# tests/deploy/test_launches_image.py, so the size the test measures and the files it
# runs the job with are the image's.
#
#   deploy/launches/trim.sh SITE_PACKAGES_DIR
#
# Every removal below is of something the job never loads. The test runs the job on the
# trimmed files and imports every pyarrow extension module left, so a removal that
# breaks a remaining module fails the suite, not the ECS task.
set -eu

site=${1:?usage: trim.sh SITE_PACKAGES_DIR}
pyarrow=$site/pyarrow
[ -f "$pyarrow/__init__.py" ] || { echo "trim.sh: no pyarrow in $site" >&2; exit 1; }
command -v strip >/dev/null || { echo "trim.sh: strip (binutils) is needed" >&2; exit 1; }

# Arrow Flight (gRPC data transport), ~33 MB: the job fetches over HTTP and writes to
# S3; only pyarrow.flight loads these, and it then fails to import, as it should.
rm -f "$pyarrow"/libarrow_flight.so* "$pyarrow"/libarrow_python_flight.so* \
    "$pyarrow"/_flight.*.so

# C++ headers, C++ and Cython sources, and pyarrow's own test suite: for compiling
# extensions against pyarrow and for testing pyarrow, never read at run time.
rm -rf "$pyarrow"/include "$pyarrow"/includes "$pyarrow"/src "$pyarrow"/tests
rm -f "$pyarrow"/_pyarrow_cpp_tests.*.so
find "$pyarrow" -type f \( -name '*.pxd' -o -name '*.pyx' -o -name '*.pxi' \) -exec rm -f {} +

# A wheel is a zip, which has no symlinks, so each libarrow_python* library is there
# three times (.so, .so.N, .so.N.M.P). Extension modules load it by its soname
# (.so.N, the DT_NEEDED entry); the other two names are only for linking new code.
for unversioned in "$pyarrow"/libarrow_python*.so; do
    [ -e "$unversioned" ] || continue
    rm -f "$unversioned" "$unversioned".*.*.*
done

# The libraries ship their full symbol tables (~20 % of their size). --strip-unneeded
# keeps the dynamic symbols that loading and linking use; only tracebacks in a native
# debugger lose names.
find "$site" -type f -name '*.so*' -exec strip --strip-unneeded {} +

# Console scripts (python-dotenv's `dotenv` CLI) and bytecode written by the install:
# the job runs as `python -m streams.launches`, and the image does not write bytecode.
rm -rf "${site:?}/bin"
find "$site" -type d -name __pycache__ -prune -exec rm -rf {} +
