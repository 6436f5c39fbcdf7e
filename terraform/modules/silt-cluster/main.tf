data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

data "aws_ssm_parameter" "ami" {
  count = var.ami_id == null ? 1 : 0
  name  = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-${var.architecture}"
}

# The subnets of brokers and etcd members: their zones and CIDRs.
data "aws_subnet" "this" {
  for_each = toset(var.subnet_ids)
  id       = each.key
}

# The architectures the instance types run (checked against architecture).
data "aws_ec2_instance_type" "this" {
  for_each      = toset(concat([var.broker_instance_type], local.managed_etcd ? [var.etcd_instance_type] : []))
  instance_type = each.key
}

locals {
  ami_id       = coalesce(var.ami_id, one(data.aws_ssm_parameter.ami[*].insecure_value))
  managed_etcd = length(var.etcd_endpoints) == 0
}

# Everything rendered (configuration, user data, policies, security group
# rules) comes from the provider-free module, tested offline.
module "config" {
  source = "../silt-config"

  name       = var.name
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id

  bucket_name = var.bucket_name
  prefix      = var.prefix
  kms_key_arn = var.kms_key_arn

  etcd_nodes = [
    for name, node in local.etcd_nodes : { name = name, private_ip = node.private_ip, volume_id = aws_ebs_volume.etcd[name].id }
  ]
  etcd_endpoints = var.etcd_endpoints
  etcd_root      = var.etcd_root
  etcd_tls       = var.etcd_tls
  etcd_version   = var.etcd_version
  etcd_sha256    = var.etcd_sha256
  architecture   = var.architecture

  silt_release_url = var.silt_release_url
  silt_sha256      = var.silt_sha256

  kafka_port         = var.kafka_port
  tls_listener       = var.tls_listener
  admin_port         = var.admin_port
  client_cidrs       = var.client_cidrs
  monitoring_cidrs   = var.monitoring_cidrs
  load_balancer      = var.load_balancer
  meta_lease_seconds = var.meta_lease_seconds
  cache_memory_bytes = var.cache_memory_bytes
}
