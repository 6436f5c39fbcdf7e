# Renders a broker configuration from sample inputs for
# scripts/check-terraform.py, which validates it with
# `silt serve --check-config` and checks the rendered policies and rules.
# Provider-free: `terraform apply` runs offline with local state.

terraform {
  required_version = ">= 1.9"
}

module "config" {
  source = "../../modules/silt-config"

  name        = "check"
  region      = "eu-west-1"
  account_id  = "123456789012"
  prefix      = "prod/silt"
  kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

  etcd_nodes = [
    for i in range(3) : { name = "etcd-${i + 1}", private_ip = "10.0.${i + 1}.10", volume_id = "vol-0${i + 1}" }
  ]
  etcd_tls = {
    ca_parameter          = "/check/etcd/ca"
    client_cert_parameter = "/check/etcd/client-cert"
    client_key_parameter  = "/check/etcd/client-key"
    server_cert_parameter = "/check/etcd/server-cert"
    server_key_parameter  = "/check/etcd/server-key"
  }

  silt_release_url = "https://example.com/silt.tar.gz"
  silt_sha256      = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
  client_cidrs     = ["10.0.0.0/16"]
  monitoring_cidrs = ["10.9.0.0/24"]
  load_balancer    = true
}

output "silt_toml" {
  description = "/etc/silt/silt.toml."
  value       = module.config.silt_toml
}

output "broker_environment" {
  description = "/etc/silt/env, before the boot-time expansion."
  value       = module.config.broker_environment
}

output "policies" {
  description = "Every rendered IAM policy document."
  value       = compact([module.config.assume_role_policy, module.config.broker_policy, module.config.etcd_policy])
}

output "security_group_rules" {
  description = "Every rendered security group rule."
  value       = module.config.security_group_rules
}
