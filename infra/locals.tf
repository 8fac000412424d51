locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(sort(data.aws_availability_zones.available.names), 0, var.az_count)

  # One bucket, two prefixes that never overlap: where AWS delivers this account's flow
  # logs (the reader's only read access) and the Parquet lake (the workers' only write
  # access, the dashboard's read access).
  bucket      = "${var.name}-${local.account_id}-${var.region}"
  logs_prefix = "AWSLogs/${local.account_id}/vpcflowlogs/"
  lake_prefix = "${var.lake_prefix}/"
  logs_uri    = "s3://${aws_s3_bucket.logs.bucket}/${trimsuffix(local.logs_prefix, "/")}"
  lake_uri    = "s3://${aws_s3_bucket.logs.bucket}/${var.lake_prefix}"

  # The platform's own VPC is always logged; keys are static so for_each can plan them.
  flow_log_vpcs = merge({ platform = aws_vpc.main.id }, { for id in var.extra_flow_log_vpc_ids : id => id })

  create_msk    = var.kafka_bootstrap == null
  msk_brokers   = var.az_count * var.msk_brokers_per_az
  msk_replicas  = min(3, local.msk_brokers)
  kafka_brokers = local.create_msk ? aws_msk_cluster.kafka[0].bootstrap_brokers : var.kafka_bootstrap
  replication   = local.create_msk ? local.msk_replicas : var.kafka_replication_factor

  image = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"

  dashboard_url = "${var.certificate_arn == null ? "http" : "https"}://${coalesce(var.dashboard_hostname, aws_lb.dashboard.dns_name)}"
}
