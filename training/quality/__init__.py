"""``recsys quality``: retrieval and ranking quality measured through the online path itself
(Milvus Lite, the bundle's ONNX models, `service.online.recommender.Recommender`), on a data
set's held-out split: two-tower search alone against the merged candidate sources, and the
trade-off of the diversity settings."""
