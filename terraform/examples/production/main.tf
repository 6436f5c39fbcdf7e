# A production Silt cluster: brokers scaling from 3 to 12, a 3-member etcd
# over mutual TLS, an SSL Kafka listener next to the PLAINTEXT one, a
# customer-managed KMS key for the bucket and volumes, a checksum-verified
# release, Prometheus allowed to the admin port.

terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

# Tags through the module, not the provider's default_tags: those do not
# reach the broker instances the autoscaling group launches.
provider "aws" {
  region = var.region
}

module "silt" {
  source = "../../modules/silt-cluster"

  name             = var.name
  vpc_id           = var.vpc_id
  subnet_ids       = var.subnet_ids
  route_table_ids  = var.route_table_ids
  client_cidrs     = var.client_cidrs
  monitoring_cidrs = var.monitoring_cidrs

  kms_key_arn = var.kms_key_arn
  prefix      = "prod"
  tags        = var.tags

  silt_release_url = var.silt_release_url
  silt_sha256      = var.silt_sha256

  broker_instance_type = "m7g.xlarge"
  broker_min_count     = 3
  broker_max_count     = 12
  cache_memory_bytes   = 2147483648

  etcd_instance_type = "m7g.large"
  etcd_sha256        = var.etcd_sha256
  etcd_tls = {
    ca_parameter          = "/${var.name}/etcd/ca"
    client_cert_parameter = "/${var.name}/etcd/client-cert"
    client_key_parameter  = "/${var.name}/etcd/client-key"
    server_cert_parameter = "/${var.name}/etcd/server-cert"
    server_key_parameter  = "/${var.name}/etcd/server-key"
  }
  tls_listener = {
    cert_parameter = "/${var.name}/kafka/cert"
    key_parameter  = "/${var.name}/kafka/key"
  }
}
