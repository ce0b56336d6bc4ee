"""Consistent snapshots taken for a run and always released (ARCHITECTURE.md section 7).

One module per METHOD (``lvm``, ``btrfs``, ``zfs``; ``ucloud-image``, ``ucloud-udisk``, ``aws-ebs``,
``aliyun-ecs``), each implementing ``base.Snapshot``; ``registry.py`` maps METHOD names to them. The
engine holds every taken snapshot in the run's one exit stack, which the signal handlers unwind too.
"""
