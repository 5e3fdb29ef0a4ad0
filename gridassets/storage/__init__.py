"""The storage layer: where tables and files of the warehouse live, and how partitions are written.

Every partitioned write goes through `publish` (write-audit-publish): the new rows are staged, the
asset's audits have passed on them, and only then is the stored slice replaced, in one transaction
that also records the publish in `ops.partition_publishes`.
"""
