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
  description = "Cluster name."
  default     = "silt-dev"
}

variable "vpc_id" {
  type        = string
  description = "VPC of the cluster."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets with a NAT route, one per availability zone (3 recommended)."
}

variable "route_table_ids" {
  type        = list(string)
  description = "Route tables of those subnets (for the S3 gateway endpoint)."
}

variable "client_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs of the Kafka clients."
}

variable "silt_release_url" {
  type        = string
  description = "HTTPS URL of a Silt release tarball for arm64 Linux."
}

variable "silt_sha256" {
  type        = string
  description = "SHA-256 of that tarball."
}
