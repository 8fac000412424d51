"""Deploy commands, run from a checkout (not shipped in the runtime wheel).

The steps every ECS job's deploy shares: ``deploy/aws.py`` (the AWS session and docker
that record a dry run, errors, the bucket check, ECR, CloudWatch Logs),
``deploy/ecs.py`` (the cluster check, Fargate sizes, the task definition, running and
stopping the task), ``deploy/iam.py`` (the roles and their policies),
``deploy/output.py`` (what a command prints, its exit codes) and ``deploy/command.py``
(a command's life: settings first, interrupts, one line per failure). The SpaceX
launches job's command (``deploy/launches.sh``) is ``deploy/launches.py``, its settings
``deploy/launches_settings.py``. The flow-logs platform's (``deploy/flowlogs.sh``) is
``deploy/flowlogs.py``: its settings, Terraform runs and rollout wait in
``deploy/flowlogs_*.py``.
"""
