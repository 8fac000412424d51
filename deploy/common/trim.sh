#!/bin/sh
# Trim installed Python packages (a `pip install --target` directory) down to what the
# images' processes load. Shared by deploy/launches/Dockerfile and
# deploy/flowlogs/Dockerfile, and run by their tests (tests/deploy/test_*_image.py) on
# the directories they measure, so the sizes the tests assert and the files they run
# the processes from are the images'.
#
#   deploy/common/trim.sh SITE_PACKAGES_DIR
#
# Each section trims one package and only if it is installed: the launches job has
# pyarrow alone, the flow-logs images have pyarrow, numpy, and Dash with Plotly. Every
# removal is of something no process of these images loads or serves; the tests run the
# processes on the trimmed files, import every extension module left, and fetch every
# browser file Dash registers for production, so a removal or a strip that breaks
# something fails the suite, not a deployment.
set -eu

site=${1:?usage: trim.sh SITE_PACKAGES_DIR}
[ -d "$site" ] || { echo "trim.sh: no directory $site" >&2; exit 1; }
command -v strip >/dev/null || { echo "trim.sh: strip (binutils) is needed" >&2; exit 1; }

# ---- pyarrow ---------------------------------------------------------------------------
pyarrow=$site/pyarrow
if [ -f "$pyarrow/__init__.py" ]; then
    # Arrow Flight (gRPC data transport), ~33 MB: no process speaks Flight; only
    # pyarrow.flight loads these, and it then fails to import, as it should.
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
fi

# ---- numpy -----------------------------------------------------------------------------
numpy=$site/numpy
if [ -f "$numpy/__init__.py" ]; then
    # numpy's test suites (every `tests` directory, ~8 MB, and the extension modules only
    # they load: _core's *_tests modules and _simd), C headers and the static npymath
    # library (for building extensions), type stubs (for type checkers), and the
    # build-time tools f2py and numpy.distutils: `import numpy` reaches none of them,
    # and none of the images' code imports them.
    find "$numpy" -type d -name tests -prune -exec rm -rf {} +
    rm -f "$numpy"/_core/_*_tests.*.so "$numpy"/_core/_simd.*.so
    rm -rf "$numpy"/_core/include "$numpy"/_core/lib "$numpy"/f2py "$numpy"/distutils \
        "$numpy"/_pyinstaller
    find "$numpy" -type f \( -name '*.pyi' -o -name '*.pxd' \) -exec rm -f {} +
fi

# ---- Dash ------------------------------------------------------------------------------
dash=$site/dash
if [ -f "$dash/__init__.py" ]; then
    # Dash serves only the browser files its components register, and of those only the
    # production bundles when debug mode is off (`app.run(debug=False)`, as
    # `networkflow dashboard` runs it). Removed: source maps (*.map, fetched only by a
    # browser's developer tools), the development bundles (dash_renderer.dev.js, the
    # unminified React, ReactDOM and prop-types, dcc's proptypes.js) and files no
    # component registers (dash_table's commons.js, demo and test bundles), which Dash
    # refuses to serve anyway.
    find "$dash" -type f -name '*.map' -exec rm -f {} +
    rm -f "$dash"/dash-renderer/build/dash_renderer.dev.js "$dash"/dcc/proptypes.js \
        "$dash"/dash_table/commons.js "$dash"/dash_table/demo.js "$dash"/dash_table/index.html
    find "$dash"/dash_table -maxdepth 1 -type f -name '*_test*.js' -exec rm -f {} +
    for bundle in "$dash"/deps/*.js; do
        case $bundle in *.min.js) ;; *) rm -f "$bundle" ;; esac
    done
fi

# ---- Plotly ----------------------------------------------------------------------------
plotly=$site/plotly
if [ -f "$plotly/__init__.py" ]; then
    # The JupyterLab extension and FigureWidget's bundle (notebooks only) and the sample
    # data sets of plotly.express.data. package_data/plotly.min.js stays: Dash serves it
    # to the browser as plotly.js.
    rm -rf "$plotly"/labextension "$plotly"/package_data/datasets
    rm -f "$plotly"/package_data/widgetbundle.js
fi
# Jupyter's notebook and lab extensions of Dash and Plotly (share/jupyter): no notebook
# runs in these images.
rm -rf "${site:?}/share/jupyter"
rmdir "$site/share" 2>/dev/null || true

# ---- every package ---------------------------------------------------------------------
# The libraries ship their full symbol tables (~20 % of their size). --strip-unneeded
# keeps the dynamic symbols that loading and linking use; only tracebacks in a native
# debugger lose names. Not stripped: the libraries auditwheel vendored into
# <package>.libs/ (numpy's OpenBLAS and gfortran), which patchelf rewrote; strip breaks
# their layout ("ELF load command address/offset not page-aligned" at import).
find "$site" -type f -name '*.so*' ! -path '*.libs/*' -exec strip --strip-unneeded {} +

# Console scripts (their first line names the builder's Python, not the image's) and
# bytecode written by the install: the images run `python -m ...` and write no bytecode.
rm -rf "${site:?}/bin"
find "$site" -type d -name __pycache__ -prune -exec rm -rf {} +
