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
  description = "Cluster name."
  default     = "silt-dev"

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
  description = "Private subnets with a NAT route, one per availability zone (3 recommended: etcd needs as many zones as members, up to 3)."

  validation {
    condition     = length(var.subnet_ids) > 0 && length(distinct(var.subnet_ids)) == length(var.subnet_ids) && alltrue([for s in var.subnet_ids : can(regex("^subnet-[a-f0-9]+$", s))])
    error_message = "subnet_ids must be one or more distinct subnet ids (subnet-...)."
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
