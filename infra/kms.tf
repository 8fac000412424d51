# One customer-managed key for the platform's data at rest: the logs bucket, the image
# repository, the CloudWatch log groups and the Kafka brokers' disks. A CMK (not
# SSE-S3) so that reading the flow logs needs this key's permission as well as the
# bucket's, and every use of it is in CloudTrail; rotated yearly by AWS.
resource "aws_kms_key" "data" {
  description             = "${var.name}: flow logs, lake, images, logs, Kafka"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  # Written inline (not an aws_iam_policy_document): a key policy's Resource "*" means
  # "this key", and the IAM checks would misread it as any resource.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # AWS's default: the account administers the key through IAM. Without it the
        # key could become unmanageable; the task roles get narrow grants in iam.tf.
        Sid       = "AccountAdministersTheKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # VPC flow logs write SSE-KMS objects into the bucket, for this account only.
        Sid       = "FlowLogDeliveryEncrypts"
        Effect    = "Allow"
        Principal = { Service = "delivery.logs.amazonaws.com" }
        Action    = "kms:GenerateDataKey*"
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
          ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:*" }
        }
      },
      {
        # CloudWatch Logs encrypts this account's log groups of this region.
        Sid       = "CloudWatchLogsEncrypts"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*" }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.name}-data"
  target_key_id = aws_kms_key.data.key_id
}
