# Validated by the module too.

variable "region" {
  type        = string
  description = "AWS region of the cluster."

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1."
  }
}

variable "name" {
  type        = string
  description = "Cluster name; also the first segment of the TLS parameters' names (/NAME/etcd/..., /NAME/kafka/...)."
  default     = "silt-prod"
}

variable "vpc_id" {
  type        = string
  description = "VPC of the cluster."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Three private subnets with a NAT route, in three availability zones."

  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "Production spreads etcd over three zones: give three subnets."
  }
}

variable "route_table_ids" {
  type        = list(string)
  description = "Route tables of those subnets (for the S3 gateway endpoint)."
}

variable "client_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs of the Kafka clients."
}

variable "monitoring_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs of Prometheus."
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key of the bucket and the EBS volumes; its key policy must let the account's IAM policies grant its use."
}

variable "silt_release_url" {
  type        = string
  description = "HTTPS URL of a Silt release tarball for arm64 Linux."
}

variable "silt_sha256" {
  type        = string
  description = "SHA-256 of that tarball."
}

variable "tags" {
  type        = map(string)
  description = "Tags of every resource."
  default     = { service = "silt", environment = "production" }
}
