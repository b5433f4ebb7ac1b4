"""Driving the real app, for tests/ and bench/ alike: its server (`streamlit run`, or several
behind nginx), real Chromium, and Streamlit's websocket protocol as a student's browser speaks it.

    server.py    `streamlit run` on a free port, healthy before it is used, stopped after
    cluster.py   `attention-visualizer serve` (ui/serve.py) on a free loopback port, for the benchmarks and tests
    chromium.py  finding and launching Chromium, the app's browser context, screenshots
    runs.py      the script runs one page's websocket carries (Streamlit's own protobuf classes)
    page.py      waiting for the page and reading it: selectors, the step view, its charts
    student.py   one student's tab without a browser: the websocket client
    files.py     a browser's first visit without a browser: the page's files, as Chromium fetches them
    lesson.py    the classroom lesson a class of such students plays

Imported from the checkout's root, like bench/ and tests/; not part of the installed package.
Nothing here imports from tests/ or bench/.
"""
