# Security groups (rules rendered in silt-config), the S3 gateway endpoint
# and the bootstrap load balancer.

locals {
  security_groups = setunion(
    ["broker"],
    local.managed_etcd ? ["etcd"] : [],
    var.load_balancer ? ["load_balancer"] : [],
  )
  security_group_ids = merge(
    { for group, sg in aws_security_group.this : group => sg.id },
    local.managed_etcd ? {} : { etcd = var.etcd_security_group_id },
  )
}

resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:Attached by key (this["broker"] to the launch template, this["etcd"] to the etcd instances, this["load_balancer"] to the NLB); checkov's graph does not follow for_each keys.
  for_each = local.security_groups
  # A prefix, not a name: create_before_destroy needs the new group to be
  # created while the old one, of the same name, still exists.
  name_prefix = "${module.config.names.security_group[each.key]}-"
  description = "Silt cluster ${var.name}: ${each.key}"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = module.config.names.security_group[each.key] })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group_rule" "this" {
  for_each                 = module.config.security_group_rules
  security_group_id        = local.security_group_ids[each.value.group]
  type                     = each.value.type
  protocol                 = "tcp"
  from_port                = each.value.port
  to_port                  = each.value.port
  cidr_blocks              = each.value.cidr == null ? null : [each.value.cidr]
  source_security_group_id = each.value.peer == null ? null : local.security_group_ids[each.value.peer]
  description              = each.value.description
}

data "aws_vpc_endpoint_service" "s3" {
  count        = var.s3_vpc_endpoint ? 1 : 0
  service      = "s3"
  service_type = "Gateway"
}

resource "aws_vpc_endpoint" "s3" {
  count             = var.s3_vpc_endpoint ? 1 : 0
  vpc_id            = var.vpc_id
  service_name      = data.aws_vpc_endpoint_service.s3[0].service_name
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.route_table_ids
  tags              = merge(var.tags, { Name = module.config.names.vpc_endpoint })
}

# Bootstrap only: clients then connect to the brokers' advertised addresses.
resource "aws_lb" "bootstrap" {
  #checkov:skip=CKV_AWS_91:A network load balancer writes access logs only for TLS listeners; this one forwards TCP.
  count                            = var.load_balancer ? 1 : 0
  name                             = module.config.names.load_balancer
  load_balancer_type               = "network"
  internal                         = var.load_balancer_internal
  subnets                          = coalescelist(var.load_balancer_subnet_ids, var.subnet_ids)
  security_groups                  = [aws_security_group.this["load_balancer"].id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection
  tags                             = var.tags
}

resource "aws_lb_target_group" "bootstrap" {
  count                = var.load_balancer ? 1 : 0
  name                 = module.config.names.load_balancer
  vpc_id               = var.vpc_id
  target_type          = "instance"
  protocol             = "TCP"
  port                 = var.kafka_port
  deregistration_delay = 30

  # 200 while the broker serves, 503 otherwise.
  health_check {
    protocol            = "HTTP"
    port                = var.admin_port
    path                = "/health"
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  tags = var.tags
}

resource "aws_lb_listener" "bootstrap" {
  count             = var.load_balancer ? 1 : 0
  load_balancer_arn = aws_lb.bootstrap[0].arn
  protocol          = "TCP"
  port              = var.kafka_port

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.bootstrap[0].arn
  }

  tags = var.tags
}
