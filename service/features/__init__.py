"""One feature schema and encoder, shared by training and serving (NumPy only)."""

from service.features.encoder import EncodingError, FeatureEncoder, InputSpec
from service.features.schema import (
    OOV_ID,
    PAD_ID,
    CrossFeat,
    DenseFeat,
    Feature,
    FeatureSchema,
    SchemaError,
    SparseFeat,
    VarLenSparseFeat,
)
from service.features.vocab import Vocabulary

__all__ = [
    "OOV_ID",
    "PAD_ID",
    "CrossFeat",
    "DenseFeat",
    "EncodingError",
    "Feature",
    "FeatureEncoder",
    "FeatureSchema",
    "InputSpec",
    "SchemaError",
    "SparseFeat",
    "VarLenSparseFeat",
    "Vocabulary",
]
