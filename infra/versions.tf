terraform {
  # use_lockfile (S3-native state locking, backend.tf) needs Terraform 1.10; the
  # cross-variable validation of worker_count needs 1.9.
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Written against arguments the 5.x and 6.x providers share (no provider can be
      # downloaded where this was written, so neither was run: see docs/deploy.md).
      version = ">= 5.90, < 7.0"
    }
  }
}
