"""The flow-logs dashboard: a Dash app over the pipeline's lake (``networkflow dashboard``).

ids.py names the page's parts; selection.py turns filters and URLs into a selection;
data.py asks the lake (the views' own queries); geo.py places external addresses;
figures.py draws; layout.py and callbacks.py make the page, inputs.py reads what it
sends back and requests.py the callback requests it may send; app.py builds it; cli.py
serves it.
"""
