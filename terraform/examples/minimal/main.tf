# The smallest Silt cluster: 3 brokers behind an internal bootstrap load
# balancer, a 3-member etcd, an SSE-S3 bucket, plaintext everywhere inside
# the VPC.

terraform {
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}

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
  silt_release_url = var.silt_release_url
  silt_sha256      = var.silt_sha256
}
