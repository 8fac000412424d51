# Four roles trusted by ECS tasks (the task roles only by this account's), each with
# one inline policy holding exactly what its process does:
#   execution  - ECS itself: pull the image from one repository, write one log group
#   reader     - list and read the flow-log prefix (AWSLogs/<account>/vpcflowlogs/)
#   worker     - list, read, write and delete the lake prefix
#   dashboard  - list and read the lake prefix
# Every S3 object is encrypted with the platform's key (kms.tf): each role may use it
# only through S3 (kms:ViaService), to decrypt, and the workers to encrypt too.

# Task roles: only this account's ECS tasks (ECS's documented confused-deputy guard).
data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:*"]
    }
  }
}

# ---- execution role (ECS, before and around the container) ----------------------------

# ECS documents no source conditions for the execution role (the agent assumes it before
# the task exists): trusted by the service principal alone, as deploy/iam.py does.
data "aws_iam_policy_document" "ecs_execution_trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_execution_trust.json
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-image-write-logs"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

data "aws_iam_policy_document" "execution" {
  # AWS requires "*": GetAuthorizationToken has no resource-level permissions.
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullTheImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.app.arn]
  }

  statement {
    sid       = "WriteTheLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.tasks.arn}:log-stream:*"]
  }
}

# ---- reader: the flow-log prefix, read only -------------------------------------------

resource "aws_iam_role" "reader" {
  name               = "${var.name}-reader"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

resource "aws_iam_role_policy" "reader" {
  name   = "read-flow-logs"
  role   = aws_iam_role.reader.id
  policy = data.aws_iam_policy_document.reader.json
}

data "aws_iam_policy_document" "reader" {
  statement {
    sid       = "ReadTheFlowLogs"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.logs.arn}/${local.logs_prefix}*"]
  }

  # Listing is a bucket permission: the s3:prefix condition keeps it to the flow logs.
  statement {
    sid       = "ListTheFlowLogs"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.logs.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [trimsuffix(local.logs_prefix, "/"), "${local.logs_prefix}*"]
    }
  }

  statement {
    sid       = "DecryptThroughS3"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

# ---- worker: the lake prefix, read and write ------------------------------------------

resource "aws_iam_role" "worker" {
  name               = "${var.name}-worker"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "read-write-lake"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

data "aws_iam_policy_document" "worker" {
  # Files are written whole (large ones in parts), replaced and deleted by the
  # idempotent Parquet copy (streams/common/parquet.py).
  statement {
    sid       = "ReadWriteTheLake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.logs.arn}/${local.lake_prefix}*"]
  }

  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.logs.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.lake_prefix, "${local.lake_prefix}*"]
    }
  }

  statement {
    sid       = "EncryptDecryptThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

# ---- dashboard: the lake prefix, read only --------------------------------------------

resource "aws_iam_role" "dashboard" {
  name               = "${var.name}-dashboard"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_trust.json
}

resource "aws_iam_role_policy" "dashboard" {
  name   = "read-lake"
  role   = aws_iam_role.dashboard.id
  policy = data.aws_iam_policy_document.dashboard.json
}

data "aws_iam_policy_document" "dashboard" {
  statement {
    sid       = "ReadTheLake"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.logs.arn}/${local.lake_prefix}*"]
  }

  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.logs.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.lake_prefix, "${local.lake_prefix}*"]
    }
  }

  statement {
    sid       = "DecryptThroughS3"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}
