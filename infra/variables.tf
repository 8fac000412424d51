# ---- naming and place ---------------------------------------------------------------

variable "name" {
  description = "Prefix of every resource name (bucket, cluster, roles, log group)."
  type        = string
  default     = "flowlogs"

  validation {
    # The bucket name is "<name>-<account>-<region>": at most 63 characters.
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name))
    error_message = "name: 3 to 20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of everything here (the flow logs of this region's VPCs)."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.region))
    error_message = "region: an AWS region name such as eu-west-1."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# ---- network --------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR of the VPC created for the platform (network.tf)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    # Private subnets are /prefix+4, public ones /prefix+8: an ALB needs a /27 at least.
    condition = (
      can(cidrhost(var.vpc_cidr, 0))
      && tonumber(split("/", var.vpc_cidr)[1]) >= 16
      && tonumber(split("/", var.vpc_cidr)[1]) <= 19
    )
    error_message = "vpc_cidr: an IPv4 CIDR from /16 to /19."
  }
}

variable "az_count" {
  description = "Availability zones used (subnets, MSK brokers): 3 gives Kafka a replication factor of 3."
  type        = number
  default     = 2

  validation {
    condition     = contains([2, 3], var.az_count)
    error_message = "az_count: 2 or 3 (an ALB and MSK need two zones at least)."
  }
}

# ---- the flow logs ----------------------------------------------------------------------

variable "extra_flow_log_vpc_ids" {
  description = "Other VPCs of this account and region whose flow logs go to the same bucket (the platform's own VPC always does)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.extra_flow_log_vpc_ids : can(regex("^vpc-[0-9a-f]{8,17}$", id))])
    error_message = "extra_flow_log_vpc_ids: VPC ids (vpc-...)."
  }
}

variable "flow_log_traffic_type" {
  description = "Traffic the flow logs record."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type: ACCEPT, REJECT or ALL."
  }
}

variable "flow_log_file_format" {
  description = "Format of the delivered objects: plain-text (*.log.gz) or parquet (*.log.parquet); the reader reads both."
  type        = string
  default     = "plain-text"

  validation {
    condition     = contains(["plain-text", "parquet"], var.flow_log_file_format)
    error_message = "flow_log_file_format: plain-text or parquet."
  }
}

variable "flow_log_aggregation_seconds" {
  description = "Longest time AWS aggregates a flow before it writes a record (60 or 600)."
  type        = number
  default     = 60

  validation {
    condition     = contains([60, 600], var.flow_log_aggregation_seconds)
    error_message = "flow_log_aggregation_seconds: 60 or 600."
  }
}

variable "flow_log_format" {
  description = "Fields of each record. The default adds the VPC, subnet and TCP flags to version 2: the pipeline keys flows by account and VPC, and the scan detector reads the flags."
  type        = string
  # $$ escapes Terraform's interpolation: AWS receives ${version} ${account-id} ...
  default = "$${version} $${account-id} $${interface-id} $${srcaddr} $${dstaddr} $${srcport} $${dstport} $${protocol} $${packets} $${bytes} $${start} $${end} $${action} $${log-status} $${vpc-id} $${subnet-id} $${instance-id} $${tcp-flags} $${type} $${pkt-srcaddr} $${pkt-dstaddr} $${region} $${az-id} $${flow-direction}"

  validation {
    condition     = can(regex("^\\$\\{[a-z-]+\\}( \\$\\{[a-z-]+\\})*$", var.flow_log_format))
    error_message = "flow_log_format: space-separated $${field} names."
  }
}

variable "flow_logs_retention_days" {
  description = "Days the raw flow-log objects are kept (their Parquet copy in the lake is kept)."
  type        = number
  default     = 90

  validation {
    condition     = var.flow_logs_retention_days >= 1 && floor(var.flow_logs_retention_days) == var.flow_logs_retention_days
    error_message = "flow_logs_retention_days: a whole number of days, 1 or more."
  }
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept (the bucket is versioned)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_days >= 1 && floor(var.noncurrent_version_days) == var.noncurrent_version_days
    error_message = "noncurrent_version_days: a whole number of days, 1 or more."
  }
}

variable "lake_prefix" {
  description = "Prefix of the Parquet lake in the logs bucket (FLOWLOGS_LAKE); the workers may write only there."
  type        = string
  default     = "lake"

  validation {
    # Never inside AWSLogs/: the reader's prefix and the workers' must not overlap.
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$", var.lake_prefix)) && !startswith(lower(var.lake_prefix), "awslogs")
    error_message = "lake_prefix: lowercase path segments without leading or trailing slash, not under AWSLogs."
  }
}

# ---- the image and the tasks ------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the image (in this stack's ECR repository) every task runs: the git sha the pipeline pushed."
  type        = string

  validation {
    # Tags are immutable (ecr.tf): a moving "latest" would never be re-pulled anyway.
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag: a Docker tag (not latest), such as the commit's sha."
  }
}

variable "flowlogs_partitions" {
  description = "Partitions of flowlogs.records (FLOWLOGS_PARTITIONS): the most workers that share the load."
  type        = number
  default     = 6

  validation {
    condition     = var.flowlogs_partitions >= 1 && var.flowlogs_partitions <= 256 && floor(var.flowlogs_partitions) == var.flowlogs_partitions
    error_message = "flowlogs_partitions: 1 to 256."
  }
}

variable "worker_count" {
  description = "Flow-logs worker tasks (python -m streams.flowlogs worker)."
  type        = number
  default     = 2

  validation {
    # A worker beyond the partition count would own nothing.
    condition     = var.worker_count >= 1 && var.worker_count <= var.flowlogs_partitions && floor(var.worker_count) == var.worker_count
    error_message = "worker_count: 1 to flowlogs_partitions."
  }
}

variable "task_sizes" {
  description = "Fargate CPU units and memory (MiB) of each task; memory must suit the CPU (Fargate's table)."
  type = object({
    reader    = object({ cpu = number, memory = number })
    worker    = object({ cpu = number, memory = number })
    dashboard = object({ cpu = number, memory = number })
  })
  default = {
    reader    = { cpu = 512, memory = 1024 }
    worker    = { cpu = 1024, memory = 4096 } # RocksDB, the detectors' windows, DuckDB
    dashboard = { cpu = 512, memory = 2048 }
  }

  validation {
    condition = alltrue([
      for size in values(var.task_sizes) :
      contains([256, 512, 1024, 2048, 4096, 8192, 16384], size.cpu) && size.memory >= 512 && size.memory <= 122880
    ])
    error_message = "task_sizes: cpu one of 256..16384 (Fargate's sizes), memory 512 to 122880 MiB."
  }
}

variable "worker_ephemeral_storage_gib" {
  description = "Task storage of a worker (its RocksDB tables live there and are restored from their changelogs on a new task)."
  type        = number
  default     = 50

  validation {
    condition     = var.worker_ephemeral_storage_gib >= 21 && var.worker_ephemeral_storage_gib <= 200
    error_message = "worker_ephemeral_storage_gib: 21 to 200 (Fargate's range; 20 is the default without this setting)."
  }
}

variable "log_retention_days" {
  description = "Days the tasks' CloudWatch logs are kept."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...)."
  }
}

variable "ecr_keep_images" {
  description = "Images the repository keeps (older ones expire; keep enough to roll back)."
  type        = number
  default     = 50

  validation {
    condition     = var.ecr_keep_images >= 5
    error_message = "ecr_keep_images: 5 or more."
  }
}

# ---- Kafka -------------------------------------------------------------------------------

variable "kafka_bootstrap" {
  description = "host:port[,host:port] of an existing Kafka cluster reachable in plaintext from the VPC; null (the default) creates an MSK cluster (msk.tf)."
  type        = string
  default     = null

  validation {
    condition     = var.kafka_bootstrap == null || can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*$", var.kafka_bootstrap))
    error_message = "kafka_bootstrap: host:port[,host:port...]."
  }
}

variable "kafka_replication_factor" {
  description = "Replication of the topics the processes create, on an existing cluster (with MSK it follows the broker count)."
  type        = number
  default     = 3

  validation {
    condition     = var.kafka_replication_factor >= 1 && var.kafka_replication_factor <= 5
    error_message = "kafka_replication_factor: 1 to 5."
  }
}

variable "msk_kafka_version" {
  description = "Apache Kafka version of the MSK cluster (3.8.x: the version MSK recommended when this was written)."
  type        = string
  default     = "3.8.x"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.([0-9]+|x)$", var.msk_kafka_version))
    error_message = "msk_kafka_version: an MSK version such as 3.8.x or 3.6.0."
  }
}

variable "msk_instance_type" {
  description = "Broker instance type."
  type        = string
  default     = "kafka.t3.small"

  validation {
    condition     = startswith(var.msk_instance_type, "kafka.")
    error_message = "msk_instance_type: an MSK broker type (kafka.t3.small, kafka.m7g.large...)."
  }
}

variable "msk_brokers_per_az" {
  description = "Brokers in each availability zone."
  type        = number
  default     = 1

  validation {
    condition     = var.msk_brokers_per_az >= 1 && var.msk_brokers_per_az <= 5
    error_message = "msk_brokers_per_az: 1 to 5."
  }
}

variable "msk_volume_gib" {
  description = "EBS storage of each broker."
  type        = number
  default     = 100

  validation {
    condition     = var.msk_volume_gib >= 1 && var.msk_volume_gib <= 16384
    error_message = "msk_volume_gib: 1 to 16384."
  }
}

# ---- the dashboard --------------------------------------------------------------------

variable "dashboard_allowed_cidrs" {
  description = "Networks allowed to reach the dashboard's load balancer (an office, a VPN). The dashboard has no login of its own: keep this narrow."
  type        = list(string)

  validation {
    condition     = length(var.dashboard_allowed_cidrs) > 0 && alltrue([for c in var.dashboard_allowed_cidrs : can(cidrhost(c, 0))])
    error_message = "dashboard_allowed_cidrs: one IPv4 CIDR at least."
  }
}

variable "certificate_arn" {
  description = "ACM certificate for HTTPS on the load balancer; null serves plain HTTP on port 80."
  type        = string
  default     = null

  validation {
    condition     = var.certificate_arn == null || can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn: an ACM certificate ARN."
  }
}

variable "dashboard_hostname" {
  description = "DNS name pointing at the load balancer (the certificate's); null uses the load balancer's own name in dashboard_url."
  type        = string
  default     = null
}

variable "dashboard_count" {
  description = "Dashboard tasks behind the load balancer."
  type        = number
  default     = 1

  validation {
    condition     = var.dashboard_count >= 1 && var.dashboard_count <= 10
    error_message = "dashboard_count: 1 to 10."
  }
}

variable "dashboard_command" {
  description = "Arguments of the dashboard image's `networkflow dashboard` entry point; null reads the lake (ecs.tf)."
  type        = list(string)
  default     = null
}

variable "dashboard_health_path" {
  description = "Path the load balancer and the container health check probe."
  type        = string
  default     = "/health"

  validation {
    condition     = startswith(var.dashboard_health_path, "/")
    error_message = "dashboard_health_path: a path starting with /."
  }
}

variable "alb_deletion_protection" {
  description = "Refuse to delete the load balancer (turn off before terraform destroy)."
  type        = bool
  default     = true
}

variable "kafka_cidrs" {
  description = "With kafka_bootstrap: the networks of its brokers, the only Kafka destinations the reader and workers may reach."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.kafka_cidrs : can(cidrhost(c, 0))]) && (var.kafka_bootstrap == null || length(var.kafka_cidrs) > 0)
    error_message = "kafka_cidrs: IPv4 CIDRs, one at least when kafka_bootstrap is set."
  }
}
