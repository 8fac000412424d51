# The dashboard's entry: an internet-facing load balancer in the public subnets that
# only dashboard_allowed_cidrs may reach (security.tf), HTTPS when certificate_arn is
# given (HTTP then only redirects), plain HTTP otherwise.
resource "aws_lb" "dashboard" {
  #checkov:skip=CKV_AWS_91:ALB access logs accept only SSE-S3 buckets, not the platform's KMS-encrypted one; the users are a few allowed networks, and their requests are in the dashboard's own logs.
  #checkov:skip=CKV2_AWS_20:Port 80 redirects to HTTPS whenever certificate_arn is set (aws_lb_listener.http); without a certificate there is no HTTPS to redirect to.
  #checkov:skip=CKV2_AWS_28:No WAF: the load balancer admits dashboard_allowed_cidrs only (security.tf); add a web ACL before opening it wider.
  name                       = "${var.name}-dashboard"
  load_balancer_type         = "application"
  internal                   = false
  subnets                    = aws_subnet.public[*].id
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
}

resource "aws_lb_target_group" "dashboard" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; from there to the task the traffic stays in the VPC, between two security groups that admit only each other.
  name                 = "${var.name}-dashboard"
  port                 = 8050
  protocol             = "HTTP"
  target_type          = "ip" # Fargate tasks (awsvpc)
  vpc_id               = aws_vpc.main.id
  deregistration_delay = 30

  health_check {
    path                = var.dashboard_health_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:Port 80 redirects to HTTPS whenever certificate_arn is set; it serves the dashboard only in a deployment without a certificate, to dashboard_allowed_cidrs.
  #checkov:skip=CKV_AWS_103:Same listener: TLS applies to the HTTPS listener, which uses a TLS 1.2+ policy.
  load_balancer_arn = aws_lb.dashboard.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = var.certificate_arn == null ? "forward" : "redirect"
    target_group_arn = var.certificate_arn == null ? aws_lb_target_group.dashboard.arn : null

    dynamic "redirect" {
      for_each = var.certificate_arn == null ? [] : [443]
      content {
        port        = tostring(redirect.value)
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}

resource "aws_lb_listener" "https" {
  count = var.certificate_arn == null ? 0 : 1

  load_balancer_arn = aws_lb.dashboard.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.dashboard.arn
  }
}
