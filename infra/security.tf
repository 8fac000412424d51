# Every rule the platform's traffic needs, and no other: no group allows all egress.
# Tasks: HTTPS to the VPC endpoints and S3; the reader and workers to Kafka; workers to
# each other (routed views); the dashboard to the workers (alerts); the load balancer to the dashboard on 8050, and the
# allowed networks to the load balancer. (Security groups do not filter the VPC's DNS
# resolver, its time service or the task metadata endpoint.)

locals {
  kafka_clients = toset(["reader", "worker"])
  # The ports of an existing cluster, from its bootstrap list.
  kafka_ports    = var.kafka_bootstrap == null ? [] : distinct([for hp in split(",", var.kafka_bootstrap) : tonumber(split(":", hp)[1])])
  listener_ports = var.certificate_arn == null ? [80] : [80, 443]
}

resource "aws_security_group" "task" {
  for_each = toset(["reader", "worker", "dashboard"])

  name        = "${var.name}-${each.key}"
  description = "${var.name} ${each.key} tasks"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name}-endpoints"
  description = "${var.name} interface endpoints (ECR, CloudWatch Logs)"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "${var.name} dashboard load balancer"
  vpc_id      = aws_vpc.main.id
}

resource "aws_security_group" "msk" {
  count = local.create_msk ? 1 : 0

  name        = "${var.name}-msk"
  description = "${var.name} Kafka brokers"
  vpc_id      = aws_vpc.main.id
}

# ---- every task: the image, the logs, S3 ----------------------------------------------

resource "aws_vpc_security_group_egress_rule" "task_to_endpoints" {
  for_each = aws_security_group.task

  security_group_id            = each.value.id
  description                  = "HTTPS to the ECR and CloudWatch Logs endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints.id
}

resource "aws_vpc_security_group_egress_rule" "task_to_s3" {
  for_each = aws_security_group.task

  security_group_id = each.value.id
  description       = "HTTPS to S3 through its gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3.prefix_list_id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_task" {
  for_each = aws_security_group.task

  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from the ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value.id
}

# ---- Kafka: the reader and the workers only ------------------------------------------

resource "aws_vpc_security_group_egress_rule" "client_to_msk" {
  for_each = local.create_msk ? local.kafka_clients : toset([])

  security_group_id            = aws_security_group.task[each.key].id
  description                  = "Kafka (plaintext listener) on the MSK brokers"
  ip_protocol                  = "tcp"
  from_port                    = 9092
  to_port                      = 9092
  referenced_security_group_id = aws_security_group.msk[0].id
}

resource "aws_vpc_security_group_ingress_rule" "msk_from_client" {
  for_each = local.create_msk ? local.kafka_clients : toset([])

  security_group_id            = aws_security_group.msk[0].id
  description                  = "Kafka from the ${each.key} tasks"
  ip_protocol                  = "tcp"
  from_port                    = 9092
  to_port                      = 9092
  referenced_security_group_id = aws_security_group.task[each.key].id
}

resource "aws_vpc_security_group_egress_rule" "client_to_kafka" {
  for_each = {
    for c in setproduct(tolist(local.kafka_clients), var.kafka_cidrs, local.kafka_ports) :
    "${c[0]}-${c[1]}-${c[2]}" => { client = c[0], cidr = c[1], port = c[2] }
  }

  security_group_id = aws_security_group.task[each.value.client].id
  description       = "Kafka on the existing cluster (kafka_bootstrap)"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

# ---- workers: routed views between them (WEB_HOST, port 6066) -------------------------

resource "aws_vpc_security_group_ingress_rule" "worker_from_worker" {
  security_group_id            = aws_security_group.task["worker"].id
  description                  = "Routed views from the other workers"
  ip_protocol                  = "tcp"
  from_port                    = 6066
  to_port                      = 6066
  referenced_security_group_id = aws_security_group.task["worker"].id
}

resource "aws_vpc_security_group_egress_rule" "worker_to_worker" {
  security_group_id            = aws_security_group.task["worker"].id
  description                  = "Routed views to the other workers"
  ip_protocol                  = "tcp"
  from_port                    = 6066
  to_port                      = 6066
  referenced_security_group_id = aws_security_group.task["worker"].id
}

# ---- the dashboard asks a worker for the alerts (discovery.tf) ------------------------

resource "aws_vpc_security_group_ingress_rule" "worker_from_dashboard" {
  security_group_id            = aws_security_group.task["worker"].id
  description                  = "Alerts view from the dashboard"
  ip_protocol                  = "tcp"
  from_port                    = 6066
  to_port                      = 6066
  referenced_security_group_id = aws_security_group.task["dashboard"].id
}

resource "aws_vpc_security_group_egress_rule" "dashboard_to_worker" {
  security_group_id            = aws_security_group.task["dashboard"].id
  description                  = "Alerts view of the workers"
  ip_protocol                  = "tcp"
  from_port                    = 6066
  to_port                      = 6066
  referenced_security_group_id = aws_security_group.task["worker"].id
}

# ---- the dashboard behind its load balancer -------------------------------------------

resource "aws_vpc_security_group_ingress_rule" "alb_from_allowed" {
  for_each = {
    for c in setproduct(var.dashboard_allowed_cidrs, local.listener_ports) : "${c[0]}-${c[1]}" => { cidr = c[0], port = c[1] }
  }

  security_group_id = aws_security_group.alb.id
  description       = "Dashboard users (dashboard_allowed_cidrs)"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

resource "aws_vpc_security_group_egress_rule" "alb_to_dashboard" {
  security_group_id            = aws_security_group.alb.id
  description                  = "The dashboard tasks"
  ip_protocol                  = "tcp"
  from_port                    = 8050
  to_port                      = 8050
  referenced_security_group_id = aws_security_group.task["dashboard"].id
}

resource "aws_vpc_security_group_ingress_rule" "dashboard_from_alb" {
  security_group_id            = aws_security_group.task["dashboard"].id
  description                  = "The load balancer"
  ip_protocol                  = "tcp"
  from_port                    = 8050
  to_port                      = 8050
  referenced_security_group_id = aws_security_group.alb.id
}
