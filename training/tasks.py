"""The retrieval task: the loss lives here, not in the towers (as in TF Recommenders)."""

from __future__ import annotations

import tensorflow as tf


class InBatchSoftmax:
    """Sampled softmax over the batch's items, with log-q correction (Yi et al., RecSys 2019).

    Every other item in the batch is a negative for a user. Popular items are in-batch
    negatives more often than rare ones; subtracting ``log q(item)`` (its sampling
    probability) from the logits removes that bias. A batch that holds the same item twice
    does not count the copy as a negative.
    """

    def __init__(self, temperature: float, logq_correction: bool = True) -> None:
        self.temperature = temperature
        self.logq_correction = logq_correction

    def __call__(
        self, user_vecs: tf.Tensor, item_vecs: tf.Tensor, item_ids: tf.Tensor, log_q: tf.Tensor
    ) -> tf.Tensor:
        """``user_vecs, item_vecs [batch, d]`` (row i is a positive pair); ``item_ids,
        log_q [batch]``. Returns the mean cross-entropy."""
        logits = tf.matmul(user_vecs, item_vecs, transpose_b=True) / self.temperature
        if self.logq_correction:
            logits -= log_q[tf.newaxis, :]
        batch = tf.shape(logits)[0]
        duplicate = tf.logical_and(
            tf.equal(item_ids[:, tf.newaxis], item_ids[tf.newaxis, :]),
            tf.logical_not(tf.cast(tf.eye(batch), tf.bool)),
        )
        logits = tf.where(duplicate, tf.constant(-1e9, logits.dtype), logits)
        labels = tf.range(batch)
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        )
