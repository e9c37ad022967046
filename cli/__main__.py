"""python -m genaug_cli: the genaug command, e.g. under torchrun (torchrun --nproc_per_node 2 -m genaug_cli benchmark ...)."""
from genaug_cli.main import run

run()
