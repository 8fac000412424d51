# The tasks' log group: each container writes its own stream (awslogs driver, ecs.tf),
# and the execution role may write to this group only.
resource "aws_cloudwatch_log_group" "tasks" {
  #checkov:skip=CKV_AWS_338:Operational logs of the processes, 90 days by default (log_retention_days); the security record is the flow logs themselves, kept in S3.
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}

# MSK's broker logs (msk.tf), apart from the tasks' so that no task can write there.
resource "aws_cloudwatch_log_group" "msk" {
  #checkov:skip=CKV_AWS_338:Broker logs for troubleshooting, same retention as the tasks' logs (log_retention_days).
  count             = local.create_msk ? 1 : 0
  name              = "/msk/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.data.arn
}
