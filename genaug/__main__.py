"""`python -m genaug`: points to the command line rather than running it.

The library never imports the command line (`genaug_cli`, a separate package over it), so this only
says where it is; Python's own message ("'genaug' is a package and cannot be directly executed") did not.
"""
import sys

sys.stderr.write("genaug: error: the genaug package is the library; run the genaug command, or python -m genaug_cli "
                 "(e.g. python -m genaug_cli benchmark --help)\n")
sys.exit(2)
