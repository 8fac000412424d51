provider "aws" {
  region = var.region

  # Every resource says what it belongs to, for cost reports and clean-up.
  default_tags {
    tags = merge(var.tags, { Project = var.name, ManagedBy = "terraform" })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:Subnets take the first az_count zones in name order (locals.tf sorts them); a zone AWS adds later gets a later letter and joins no existing subnet.
  state = "available"
}
