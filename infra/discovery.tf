# The workers' name inside the VPC, for the dashboard's alerts (every worker answers
# /flowlogs/alerts for all of them). AWS Cloud Map keeps one A record per running
# worker task under worker.<name>.internal; ECS registers and deregisters the tasks.
# Nothing outside the VPC resolves the name.

resource "aws_service_discovery_private_dns_namespace" "main" {
  name        = "${var.name}.internal"
  description = "${var.name} tasks"
  vpc         = aws_vpc.main.id
}

resource "aws_service_discovery_service" "worker" {
  name = "worker"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.main.id
    routing_policy = "MULTIVALUE"

    dns_records {
      type = "A"
      ttl  = 10 # a replaced worker's address leaves the answers within seconds
    }
  }

  # ECS reports the task's health (its container health check), not Route 53.
  health_check_custom_config {
    failure_threshold = 1
  }
}

locals {
  alerts_url = "http://${aws_service_discovery_service.worker.name}.${aws_service_discovery_private_dns_namespace.main.name}:6066"
}
