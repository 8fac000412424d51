# Remote state in S3, locked by a lock file next to it (use_lockfile, S3 conditional
# writes, Terraform >= 1.10): no DynamoDB table to create or pay for. A backend block
# cannot read variables, so the bucket, region and KMS key come from bootstrap/ at init:
#   terraform init -backend-config=backend.hcl
terraform {
  backend "s3" {
    key          = "flowlogs/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
