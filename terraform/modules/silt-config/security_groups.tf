# Security group rules as data: silt-cluster creates one rule per entry, in
# the group named by `group` ("broker", "etcd" or "load_balancer"), opening
# `port` to `cidr` or to the group named by `peer`. etcd and admin ports are
# open only to security groups and monitoring_cidrs (never 0.0.0.0/0).

locals {
  anywhere = "0.0.0.0/0"

  security_group_rule_list = concat(
    [for p in setproduct(local.kafka_ports, var.client_cidrs) : { group = "broker", type = "ingress", port = p[0], cidr = p[1], peer = null, description = "Kafka clients" }],
    [for c in var.monitoring_cidrs : { group = "broker", type = "ingress", port = var.admin_port, cidr = c, peer = null, description = "Prometheus and operators: admin HTTP" }],
    [
      { group = "broker", type = "ingress", port = var.kafka_port, cidr = null, peer = "broker", description = "Brokers reach each other over the first listener" },
      { group = "broker", type = "egress", port = var.kafka_port, cidr = null, peer = "broker", description = "Brokers reach each other over the first listener" },
      { group = "broker", type = "egress", port = 443, cidr = local.anywhere, peer = null, description = "HTTPS: S3, SSM and the Silt download" },
    ],
    [for port in local.etcd_client_ports : { group = "broker", type = "egress", port = port, cidr = null, peer = "etcd", description = "Brokers to etcd" }],
    [for port in local.etcd_client_ports : { group = "etcd", type = "ingress", port = port, cidr = null, peer = "broker", description = "Brokers to etcd" }],
    !local.managed_etcd ? [] : [
      { group = "etcd", type = "ingress", port = local.etcd_ports.peer, cidr = null, peer = "etcd", description = "etcd peers" },
      { group = "etcd", type = "egress", port = local.etcd_ports.peer, cidr = null, peer = "etcd", description = "etcd peers" },
      { group = "etcd", type = "egress", port = 443, cidr = local.anywhere, peer = null, description = "HTTPS: SSM and the etcd download" },
    ],
    !var.load_balancer ? [] : concat(
      [for c in var.client_cidrs : { group = "load_balancer", type = "ingress", port = var.kafka_port, cidr = c, peer = null, description = "Kafka clients bootstrapping" }],
      [for port in [var.kafka_port, var.admin_port] : { group = "load_balancer", type = "egress", port = port, cidr = null, peer = "broker", description = "Bootstrap connections and /health checks" }],
      [for port in [var.kafka_port, var.admin_port] : { group = "broker", type = "ingress", port = port, cidr = null, peer = "load_balancer", description = "Bootstrap connections and /health checks" }],
    ),
  )

  security_group_rules = {
    for r in local.security_group_rule_list : "${r.group}-${r.type}-${r.port}-${coalesce(r.cidr, r.peer)}" => r
  }
}
