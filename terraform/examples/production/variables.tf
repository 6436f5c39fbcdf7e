# Checked here too, so a wrong value is reported against this example's
# variable; the module validates the same and more.

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

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name))
    error_message = "name must be 1-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  type        = string
  description = "VPC of the cluster."

  validation {
    condition     = can(regex("^vpc-[a-f0-9]+$", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-...)."
  }
}

variable "subnet_ids" {
  type        = list(string)
  description = "Three private subnets with a NAT route, in three availability zones."

  validation {
    condition     = length(var.subnet_ids) > 0 && length(distinct(var.subnet_ids)) == length(var.subnet_ids) && alltrue([for s in var.subnet_ids : can(regex("^subnet-[a-f0-9]+$", s))])
    error_message = "subnet_ids must be one or more distinct subnet ids (subnet-...)."
  }

  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "Production spreads etcd over three zones: give three subnets."
  }
}

variable "route_table_ids" {
  type        = list(string)
  description = "Route tables of those subnets (for the S3 gateway endpoint)."

  validation {
    condition     = length(var.route_table_ids) > 0 && alltrue([for r in var.route_table_ids : can(regex("^rtb-[a-f0-9]+$", r))])
    error_message = "route_table_ids must be one or more route table ids (rtb-...)."
  }
}

variable "client_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs of the Kafka clients."

  validation {
    condition     = length(var.client_cidrs) > 0 && alltrue([for c in var.client_cidrs : can(cidrhost(c, 0)) && can(cidrnetmask(c))])
    error_message = "client_cidrs must be one or more IPv4 CIDRs."
  }
}

variable "monitoring_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs of Prometheus (allowed to the brokers' admin port)."

  validation {
    condition     = length(var.monitoring_cidrs) > 0 && alltrue([for c in var.monitoring_cidrs : can(cidrhost(c, 0)) && can(cidrnetmask(c)) && !endswith(c, "/0")])
    error_message = "monitoring_cidrs must be one or more IPv4 CIDRs narrower than /0."
  }
}

variable "kms_key_arn" {
  type        = string
  description = <<-EOT
    KMS key of the bucket, the EBS volumes and the TLS parameters. Its key policy must let the account's
    IAM policies grant its use and allow the service-linked role AWSServiceRoleForAutoScaling to use
    it (kms:CreateGrant, Decrypt, GenerateDataKey*, ReEncrypt*, DescribeKey), or no broker launches.
  EOT

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "etcd_sha256" {
  type        = string
  description = "SHA-256 of the etcd release tarball (etcd-v3.5.17-linux-arm64.tar.gz, from its SHA256SUMS); null: not checked."
  default     = null

  validation {
    condition     = var.etcd_sha256 == null || can(regex("^[a-f0-9]{64}$", var.etcd_sha256))
    error_message = "etcd_sha256 must be 64 lowercase hex digits."
  }
}

variable "silt_release_url" {
  type        = string
  description = "HTTPS URL of a Silt release tarball for arm64 Linux."

  validation {
    condition     = can(regex("^https://[^[:space:]'\"\\\\]+$", var.silt_release_url))
    error_message = "silt_release_url must be an https:// URL without spaces or quotes."
  }
}

variable "silt_sha256" {
  type        = string
  description = "SHA-256 of that tarball (64 lowercase hex digits)."

  validation {
    condition     = can(regex("^[a-f0-9]{64}$", var.silt_sha256))
    error_message = "silt_sha256 must be 64 lowercase hex digits (sha256sum of the tarball)."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags of every resource, broker instances included."
  default     = { service = "silt", environment = "production" }

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags keys must be 1-128 characters, not starting with aws:, and values at most 256 characters."
  }
}
