output "dashboard_url" {
  description = "Where the dashboard answers (from dashboard_allowed_cidrs)."
  value       = local.dashboard_url
}

output "logs_bucket" {
  description = "The bucket the flow logs are delivered to, and the lake lives in."
  value       = aws_s3_bucket.logs.bucket
}

output "flow_logs_uri" {
  description = "What the reader reads (FLOWLOGS_SOURCE)."
  value       = local.logs_uri
}

output "lake_uri" {
  description = "The Parquet copy the workers write and the dashboard reads (FLOWLOGS_LAKE)."
  value       = local.lake_uri
}

output "ecr_repository_url" {
  description = "Push the image here, tagged with the commit (immutable tags), then apply with image_tag."
  value       = aws_ecr_repository.app.repository_url
}

output "ecs_cluster" {
  description = "The ECS cluster of the three services."
  value       = aws_ecs_cluster.main.name
}

output "services" {
  description = "The ECS services: reader, worker, dashboard."
  value = {
    reader    = aws_ecs_service.reader.name
    worker    = aws_ecs_service.worker.name
    dashboard = aws_ecs_service.dashboard.name
  }
}

output "log_group" {
  description = "The tasks' CloudWatch log group (streams ecs/<container>/<task id>)."
  value       = aws_cloudwatch_log_group.tasks.name
}

output "kafka_bootstrap" {
  description = "The brokers the processes use (KAFKA_BOOTSTRAP)."
  value       = local.kafka_brokers
}

output "flow_log_ids" {
  description = "The VPC flow logs delivering to the bucket, by VPC."
  value       = { for key, log in aws_flow_log.vpc : key => log.id }
}

output "vpc_id" {
  description = "The platform's VPC."
  value       = aws_vpc.main.id
}

output "kms_key_arn" {
  description = "The key encrypting the bucket, the repository, the log groups and the brokers' disks."
  value       = aws_kms_key.data.arn
}
