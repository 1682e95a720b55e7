"""Generated inputs for the demo, the tests and the benchmarks, never read by a stage:
sample videos with known anomalies (``samples.videos``), the offline tiny CLIP
(``samples.tiny_clip``) and labelled synthetic feature stores (``samples.synthetic``)."""
