# VPC flow logs delivered straight to the bucket (no CloudWatch Logs in between, no
# delivery role: S3 delivery uses the bucket policy in s3.tf). The platform's VPC is
# always logged; extra_flow_log_vpc_ids adds the VPCs to analyse.
resource "aws_flow_log" "vpc" {
  for_each = local.flow_log_vpcs

  vpc_id                   = each.value
  traffic_type             = var.flow_log_traffic_type
  log_destination_type     = "s3"
  log_destination          = aws_s3_bucket.logs.arn
  log_format               = var.flow_log_format
  max_aggregation_interval = var.flow_log_aggregation_seconds

  destination_options {
    file_format = var.flow_log_file_format
    # AWS's default key layout, AWSLogs/{account}/vpcflowlogs/{region}/{yyyy}/{mm}/{dd}/,
    # which the reader orders and partitions by: no Hive-style or hourly folders.
    hive_compatible_partitions = false
    per_hour_partition         = false
  }

  tags = { Name = "${var.name}-${each.key}" }

  # Delivery checks the bucket policy and the key policy when the flow log is created.
  depends_on = [
    aws_s3_bucket_policy.logs,
    aws_s3_bucket_server_side_encryption_configuration.logs,
  ]
}
