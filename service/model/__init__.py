"""The served model: a verified bundle, its collection and its item table, implementing the
online pipeline's ports (`service.online.ports`). The only place online code meets a bundle."""

from service.model.item_table import ItemTable
from service.model.loader import load_serving_model
from service.model.serving import ServingModel

__all__ = ["ItemTable", "ServingModel", "load_serving_model"]
