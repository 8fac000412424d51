output "state_bucket" {
  description = "The bucket holding the main configuration's state."
  value       = aws_s3_bucket.state.bucket
}

output "state_kms_key_arn" {
  description = "The key encrypting the state."
  value       = aws_kms_key.state.arn
}

output "backend_config" {
  description = "Write to infra/backend.hcl, then: terraform init -backend-config=backend.hcl"
  value       = <<-HCL
    bucket     = "${aws_s3_bucket.state.bucket}"
    region     = "${var.region}"
    kms_key_id = "${aws_kms_key.state.arn}"
  HCL
}
