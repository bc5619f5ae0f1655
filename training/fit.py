"""Training loops: Keras ``fit`` for rankers, a custom loop for the two towers."""

from __future__ import annotations

import logging
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from service.features import OOV_ID
from service.features.encoder import Arrays
from training.early_stopping import EarlyStopping
from training.models.dssm import DSSMConfig
from training.models.ranker_config import RankerConfig
from training.models.rankers import ranker_optimizer
from training.tasks import InBatchSoftmax

log = logging.getLogger(__name__)


def take(arrays: Arrays, rows: np.ndarray) -> Arrays:
    return {name: values[rows] for name, values in arrays.items()}


def predict(model: keras.Model, arrays: Arrays) -> np.ndarray:
    """Run ``model`` on the arrays it reads (``arrays`` may hold more)."""
    names = [t.name for t in model.inputs]
    return np.asarray(model.predict({n: arrays[n] for n in names}, batch_size=8192, verbose=0))


def fit_ranker(
    model: keras.Model,
    train: tuple[Arrays, np.ndarray],
    val: tuple[Arrays, np.ndarray],
    cfg: RankerConfig,
) -> dict[str, float]:
    """Binary cross-entropy with the ranker's optimizer (``ranker_optimizer``), early stopping
    on validation AUC (best weights kept)."""
    model.compile(
        optimizer=ranker_optimizer(cfg),
        loss="binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    stop = keras.callbacks.EarlyStopping(
        monitor="val_auc", mode="max", patience=cfg.patience, restore_best_weights=True
    )
    history = model.fit(
        train[0],
        train[1].astype(np.float32),
        validation_data=(val[0], val[1].astype(np.float32)),
        batch_size=cfg.batch_size,
        epochs=cfg.epochs,
        callbacks=[stop],
        shuffle=True,
        verbose=0,
    )
    best = int(np.argmax(history.history["val_auc"]))
    log.info(
        "ranker %s: best epoch %d of %d, val AUC %.4f",
        model.name,
        best + 1,
        len(history.history["val_auc"]),
        history.history["val_auc"][best],
    )
    return {
        "epochs": len(history.history["val_auc"]),
        "best_epoch": best + 1,
        "val_auc": float(history.history["val_auc"][best]),
    }


def fit_towers(
    user_tower: keras.Model,
    item_tower: keras.Model,
    users: Arrays,
    items: Arrays,
    pair_items: np.ndarray,
    log_q: np.ndarray,
    validate: Callable[[], float],
    cfg: DSSMConfig,
    seed: int,
    user_key: str | None = None,
) -> dict[str, float]:
    """In-batch softmax over positive pairs; early stopping on ``validate()`` (higher is better).

    ``users`` holds one row per positive pair; ``items`` holds the catalog, and
    ``pair_items[i]`` is the catalog row of pair i's item; ``log_q [catalog]``.
    """
    task = InBatchSoftmax(cfg.temperature, cfg.logq_correction)
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    variables = user_tower.trainable_variables + [
        v
        for v in item_tower.trainable_variables
        if all(v is not u for u in user_tower.trainable_variables)
    ]
    log_q = tf.constant(log_q, tf.float32)

    @tf.function(reduce_retracing=True)
    def step(user_batch, item_batch, item_rows):
        with tf.GradientTape() as tape:
            u = user_tower(user_batch, training=True)
            v = item_tower(item_batch, training=True)
            loss = task(u, v, item_rows, tf.gather(log_q, item_rows))
            loss += sum(user_tower.losses) + sum(item_tower.losses)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rng = np.random.default_rng(seed)
    n = len(pair_items)
    stopping: EarlyStopping[tuple[list, list]] = EarlyStopping(cfg.patience)
    for epoch in range(cfg.epochs):
        order = rng.permutation(n)
        losses = []
        for start in range(0, n - cfg.batch_size + 1, cfg.batch_size):
            rows = order[start : start + cfg.batch_size]
            item_rows = pair_items[rows]
            user_batch = take(users, rows)
            if user_key and cfg.user_id_dropout:
                dropped = rng.random(len(rows)) < cfg.user_id_dropout
                user_batch[user_key] = np.where(dropped[:, None], OOV_ID, user_batch[user_key])
            losses.append(float(step(user_batch, take(items, item_rows), item_rows)))
        score = validate()
        log.info("dssm epoch %d: loss %.4f, validation %.4f", epoch + 1, np.mean(losses), score)
        if stopping.update(score, lambda: (user_tower.get_weights(), item_tower.get_weights())):
            break
    if stopping.best_state is not None:
        user_tower.set_weights(stopping.best_state[0])
        item_tower.set_weights(stopping.best_state[1])
    return stopping.summary()
