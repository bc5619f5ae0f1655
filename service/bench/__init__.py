"""`recsys bench`: the serving path measured against its own floor and a minimal prototype, in
one run on this machine (absolute times drift on a shared machine; ratios do not)."""
