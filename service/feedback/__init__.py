"""Closing the loop: every answer is logged as an impression, events are attributed to the
impression they answer, and both feed online metrics and an exported training data set."""
