# The pipeline on Fargate: one reader, worker_count workers, the dashboard behind the
# load balancer (alb.tf). The reader and workers run the pipeline image, the command
# picking the process; the dashboard runs the dashboard image (both built by
# deploy/flowlogs/Dockerfile). Tasks sit in private subnets without public addresses.
#
# State: a worker's RocksDB tables live on the task's ephemeral storage
# (STREAMS_DATA_DIR=/var/lib/streams, the image's default). Nothing is lost with a task:
# every table is restored from its Kafka changelog on the task that takes the partitions
# over, and the lake is in S3. No EFS, whose latency RocksDB would pay on every write.

resource "aws_ecs_cluster" "main" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

locals {
  # What every pipeline process reads (docs/platform.md, docs/flowlogs.md#settings).
  pipeline_environment = [
    { name = "KAFKA_BOOTSTRAP", value = local.kafka_brokers },
    { name = "KAFKA_REPLICATION_FACTOR", value = tostring(local.replication) },
    { name = "FLOWLOGS_PARTITIONS", value = tostring(var.flowlogs_partitions) },
    { name = "AWS_REGION", value = var.region },
  ]

  # The image's own health probe (slim has no curl): /health of the process's web port.
  web_health_check = {
    command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=4)"]
    interval    = 15
    timeout     = 5
    retries     = 3
    startPeriod = 60
  }

  # The images (deploy/flowlogs/Dockerfile) have exec-form entry points and no shell:
  # a container's command is the entry point's arguments only. The pipeline image runs
  # `python -m streams.flowlogs <command>`; the dashboard image, tagged <tag>-dashboard,
  # runs `networkflow dashboard --host 0.0.0.0 --port 8050 <arguments>`.
  reader_command = ["reader", "-l", "info"]
  worker_command = ["worker", "-l", "info"]

  # Routed views: a worker forwards a request to the worker owning its key, at the host
  # that one advertises (WEB_HOST). On Fargate that is the task's private address, known
  # only at run time: WEB_HOST=ecs-task makes the worker read it from the task metadata
  # endpoint at start (streams/common/task_address.py).
  worker_environment = [
    { name = "FLOWLOGS_LAKE", value = local.lake_uri },
    { name = "WEB_HOST", value = "ecs-task" },
  ]

  dashboard_image = "${local.image}-dashboard"
  dashboard_command = var.dashboard_command != null ? var.dashboard_command : [
    "--bucket", aws_s3_bucket.logs.bucket, "--prefix", var.lake_prefix, "--aws-region", var.region,
    "--alerts-url", local.alerts_url,
  ]

  # Each process its own stream prefix in the one log group: ecs/<container>/<task id>.
  container_defaults = {
    image     = local.image
    essential = true
    # tini-like init: signals reach the process, zombies are reaped.
    linuxParameters = { initProcessEnabled = true }
    # Fargate's longest: Faust commits offsets and flushes tables on SIGTERM.
    stopTimeout = 120
  }
}

resource "aws_ecs_task_definition" "reader" {
  #checkov:skip=CKV_AWS_336:Faust writes its data directory (/var/lib/streams) and temporary files; on Fargate a writable volume there is root-owned while the image runs as uid 10001. The code (/app, site-packages) stays root-owned and unwritable by the process.
  family                   = "${var.name}-reader"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes.reader.cpu
  memory                   = var.task_sizes.reader.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.reader.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([merge(local.container_defaults, {
    name         = "reader"
    command      = local.reader_command
    environment  = concat(local.pipeline_environment, [{ name = "FLOWLOGS_SOURCE", value = local.logs_uri }])
    portMappings = [{ containerPort = 6066, protocol = "tcp" }]
    healthCheck  = local.web_health_check
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "ecs"
      }
    }
  })])
}

resource "aws_ecs_task_definition" "worker" {
  #checkov:skip=CKV_AWS_336:The worker writes its RocksDB tables under /var/lib/streams and DuckDB spills to temporary files; on Fargate a writable volume there is root-owned while the image runs as uid 10001. The code stays root-owned and unwritable by the process.
  family                   = "${var.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes.worker.cpu
  memory                   = var.task_sizes.worker.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker.arn

  # RocksDB state (see the top of this file): restored from changelogs, never backed up.
  ephemeral_storage {
    size_in_gib = var.worker_ephemeral_storage_gib
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([merge(local.container_defaults, {
    name         = "worker"
    command      = local.worker_command
    environment  = concat(local.pipeline_environment, local.worker_environment)
    portMappings = [{ containerPort = 6066, protocol = "tcp" }]
    healthCheck  = merge(local.web_health_check, { startPeriod = 300 }) # tables restore first
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "ecs"
      }
    }
  })])
}

resource "aws_ecs_task_definition" "dashboard" {
  #checkov:skip=CKV_AWS_336:Dash and DuckDB write temporary files; on Fargate a writable volume is root-owned while the image runs as uid 10001. The code stays root-owned and unwritable by the process.
  family                   = "${var.name}-dashboard"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_sizes.dashboard.cpu
  memory                   = var.task_sizes.dashboard.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.dashboard.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([merge(local.container_defaults, {
    name    = "dashboard"
    image   = local.dashboard_image
    command = local.dashboard_command
    environment = [
      { name = "FLOWLOGS_LAKE", value = local.lake_uri },
      { name = "AWS_REGION", value = var.region },
    ]
    portMappings = [{ containerPort = 8050, protocol = "tcp" }]
    healthCheck = merge(local.web_health_check, {
      command = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050${var.dashboard_health_path}', timeout=4)"]
    })
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks.name
        awslogs-region        = var.region
        awslogs-stream-prefix = "ecs"
      }
    }
  })])
}

resource "aws_ecs_service" "reader" {
  name             = "${var.name}-reader"
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.reader.arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # One reader: the old task stops before the new one starts (the ledger in Kafka tells
  # the new one which objects are done, docs/flowlogs.md#the-reader).
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.task["reader"].id]
    assign_public_ip = false
  }
}

resource "aws_ecs_service" "worker" {
  name             = "${var.name}-worker"
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.worker.arn
  desired_count    = var.worker_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  propagate_tags   = "SERVICE"

  enable_ecs_managed_tags = true

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.task["worker"].id]
    assign_public_ip = false
  }

  # worker.<name>.internal: the dashboard's way to the alerts (discovery.tf).
  service_registries {
    registry_arn = aws_service_discovery_service.worker.arn
  }
}

resource "aws_ecs_service" "dashboard" {
  name                              = "${var.name}-dashboard"
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.dashboard.arn
  desired_count                     = var.dashboard_count
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  propagate_tags                    = "SERVICE"
  enable_ecs_managed_tags           = true
  health_check_grace_period_seconds = 60

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.task["dashboard"].id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.dashboard.arn
    container_name   = "dashboard"
    container_port   = 8050
  }

  # The target group must belong to a load balancer (through a listener) first.
  depends_on = [aws_lb_listener.http, aws_lb_listener.https]
}
