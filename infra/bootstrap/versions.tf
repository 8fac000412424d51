# Creates what the main configuration's S3 backend needs: the state bucket and its key.
# Its own state stays local (terraform.tfstate here): it is a handful of resources,
# created once; keep that file safe, or import the two resources again if it is lost.
terraform {
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.90, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = { Project = var.name, ManagedBy = "terraform", Purpose = "terraform-state" }
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
