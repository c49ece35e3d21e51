# the first f3ocus_ray import of a process: where its imports of our code begin (bench/startup.py)
from f3ocus_ray.timing import mark as _mark

_mark("import")
