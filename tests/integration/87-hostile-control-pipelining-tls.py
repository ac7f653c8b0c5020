#!/usr/bin/python3
"""
The pipelining cases of 49-hostile-control-pipelining.py against a control
listener that serves HTTPS (control.tls): the same answers, the same close,
no spin, over TLS records.
"""

import os
import runpy

os.environ["WSSIGND_TEST_CONTROL_TLS"] = "1"
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "49-hostile-control-pipelining.py"), run_name="__main__")
