# Cluster and network

variable "name" {
  type        = string
  description = "Cluster name: the Silt cluster_id, the default etcd root and the stem of every resource name."

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
  description = "Private subnets, one per availability zone, of the brokers and etcd nodes (3 spread etcd over 3 zones)."

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[a-f0-9]+$", s))])
    error_message = "subnet_ids must be one or more subnet ids (subnet-...)."
  }
}

variable "client_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs of the Kafka clients (allowed to the Kafka ports of the brokers and the load balancer)."

  validation {
    condition     = length(var.client_cidrs) > 0 && alltrue([for c in var.client_cidrs : can(cidrnetmask(c))])
    error_message = "client_cidrs must be one or more IPv4 CIDRs."
  }
}

variable "monitoring_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs allowed to the brokers' admin port (Prometheus /metrics); never 0.0.0.0/0."
  default     = []

  validation {
    condition     = alltrue([for c in var.monitoring_cidrs : can(cidrnetmask(c)) && !endswith(c, "/0")])
    error_message = "monitoring_cidrs must be IPv4 CIDRs narrower than /0."
  }
}

variable "s3_vpc_endpoint" {
  type        = bool
  description = "Whether to create an S3 gateway endpoint in route_table_ids (S3 traffic then bypasses the NAT gateway)."
  default     = true
}

variable "route_table_ids" {
  type        = list(string)
  description = "Route tables of the subnets, for the S3 gateway endpoint."
  default     = []

  validation {
    condition     = alltrue([for r in var.route_table_ids : can(regex("^rtb-[a-f0-9]+$", r))])
    error_message = "route_table_ids must be route table ids (rtb-...)."
  }

  validation {
    condition     = !var.s3_vpc_endpoint || length(var.route_table_ids) > 0
    error_message = "The S3 gateway endpoint needs route_table_ids (or set s3_vpc_endpoint = false)."
  }
}

variable "load_balancer" {
  type        = bool
  description = "Whether a network load balancer serves bootstrap connections (TCP on kafka_port, health-checked on the admin port's /health)."
  default     = true
}

variable "load_balancer_internal" {
  type        = bool
  description = "Whether the load balancer is internal (only reachable inside the VPC and its peers)."
  default     = true
}

variable "load_balancer_subnet_ids" {
  type        = list(string)
  description = "Subnets of the load balancer; empty: subnet_ids."
  default     = []

  validation {
    condition     = alltrue([for s in var.load_balancer_subnet_ids : can(regex("^subnet-[a-f0-9]+$", s))])
    error_message = "load_balancer_subnet_ids must be subnet ids (subnet-...)."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Whether the load balancer is protected from deletion."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags of every resource."
  default     = {}
}

# Bucket

variable "bucket_name" {
  type        = string
  description = "Bucket of the data objects; null: silt-NAME-ACCOUNT-REGION."
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "prefix" {
  type        = string
  description = "Key prefix of the data objects (no leading or trailing slash); the brokers may touch nothing else."
  default     = "silt"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.prefix))
    error_message = "prefix must be path segments of letters, digits, '.', '_' or '-', without leading or trailing slash."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key encrypting the bucket and the EBS volumes; null: SSE-S3 and the AWS managed EBS key."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "bucket_versioning" {
  type        = bool
  description = "Whether the bucket keeps object versions (Silt deletes its own objects; noncurrent versions then expire after noncurrent_version_days)."
  default     = false
}

variable "noncurrent_version_days" {
  type        = number
  description = "With bucket_versioning: days a deleted or overwritten object's version is kept."
  default     = 7

  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 3650
    error_message = "noncurrent_version_days must be 1-3650."
  }
}

variable "abort_multipart_days" {
  type        = number
  description = "Days after which incomplete multipart uploads are aborted."
  default     = 1

  validation {
    condition     = var.abort_multipart_days >= 1 && var.abort_multipart_days <= 365
    error_message = "abort_multipart_days must be 1-365."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Whether destroying the cluster deletes the bucket with its data."
  default     = false
}

# etcd

variable "etcd_endpoints" {
  type        = list(string)
  description = "HOST:PORT of every member of an existing etcd (3.4 or later); empty: the module runs etcd_node_count members."
  default     = []

  validation {
    condition     = alltrue([for e in var.etcd_endpoints : can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}$", e))])
    error_message = "etcd_endpoints must be HOST:PORT entries."
  }
}

variable "etcd_security_group_id" {
  type        = string
  description = "With etcd_endpoints: the security group of the existing etcd, which the module opens to the brokers on 2379."
  default     = null

  validation {
    condition     = var.etcd_security_group_id == null ? length(var.etcd_endpoints) == 0 : can(regex("^sg-[a-f0-9]+$", var.etcd_security_group_id))
    error_message = "etcd_endpoints need etcd_security_group_id (sg-...), and only they."
  }
}

variable "etcd_root" {
  type        = string
  description = "Key prefix of the cluster in etcd; null: the cluster name."
  default     = null
}

variable "etcd_tls" {
  type = object({
    ca_parameter          = string
    client_cert_parameter = string
    client_key_parameter  = string
    server_cert_parameter = optional(string)
    server_key_parameter  = optional(string)
  })
  description = <<-EOT
    TLS between brokers and etcd: SSM parameter names (SecureString for keys, under aws/ssm or
    kms_key_arn) holding PEM text. The server certificate (for etcd run by the module) must name every
    member's IP and allow serverAuth and clientAuth (it is the peer certificate too). null: plaintext.
  EOT
  default     = null
}

variable "etcd_node_count" {
  type        = number
  description = "Members of the etcd the module runs, spread over subnet_ids."
  default     = 3

  validation {
    condition     = contains([1, 3, 5], var.etcd_node_count)
    error_message = "etcd_node_count must be 1, 3 or 5."
  }
}

variable "etcd_host_number" {
  type        = number
  description = "The etcd members' fixed private IPs: this host number (plus the member's index) in their subnet."
  default     = 10

  validation {
    condition     = var.etcd_host_number >= 4 && var.etcd_host_number <= 250
    error_message = "etcd_host_number must be 4-250 (AWS reserves the first four addresses)."
  }
}

variable "etcd_instance_type" {
  type        = string
  description = "Instance type of the etcd members (of architecture)."
  default     = "t4g.medium"
}

variable "etcd_volume_gb" {
  type        = number
  description = "Size of each etcd member's data volume (gp3), kept when the instance is replaced."
  default     = 20

  validation {
    condition     = var.etcd_volume_gb >= 8 && var.etcd_volume_gb <= 1024
    error_message = "etcd_volume_gb must be 8-1024."
  }
}

variable "etcd_version" {
  type        = string
  description = "etcd release of the module's members."
  default     = "3.5.17"
}

variable "etcd_sha256" {
  type        = string
  description = "SHA-256 of the etcd release tarball; null: not checked."
  default     = null
}

# Brokers

variable "architecture" {
  type        = string
  description = "CPU architecture of every instance: arm64 or x86_64 (the instance types must match)."
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "ami_id" {
  type        = string
  description = "AMI of every instance (Amazon Linux 2023 or alike: systemd 250+, curl, the AWS CLI); null: the latest Amazon Linux 2023."
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[a-f0-9]+$", var.ami_id))
    error_message = "ami_id must be an AMI id (ami-...)."
  }
}

variable "silt_release_url" {
  type        = string
  description = "HTTPS URL of a Silt release tarball for architecture (holding the silt binary)."
  nullable    = false
}

variable "silt_sha256" {
  type        = string
  description = "SHA-256 of the tarball at silt_release_url (64 lowercase hex digits), checked before it is installed."
  nullable    = false
}

variable "broker_instance_type" {
  type        = string
  description = "Instance type of the brokers (of architecture)."
  default     = "m7g.large"
}

variable "broker_min_count" {
  type        = number
  description = "Fewest brokers (the autoscaling group's minimum and initial size)."
  default     = 3

  validation {
    condition     = var.broker_min_count >= 1 && floor(var.broker_min_count) == var.broker_min_count
    error_message = "broker_min_count must be a whole number, at least 1."
  }
}

variable "broker_max_count" {
  type        = number
  description = "Most brokers (the autoscaling group's maximum)."
  default     = 6

  validation {
    condition     = var.broker_max_count >= var.broker_min_count && floor(var.broker_max_count) == var.broker_max_count
    error_message = "broker_max_count must be a whole number, at least broker_min_count."
  }
}

variable "broker_volume_gb" {
  type        = number
  description = "Root volume of each broker (gp3): the OS, the WAL and the disk cache."
  default     = 50

  validation {
    condition     = var.broker_volume_gb >= 20 && var.broker_volume_gb <= 16384
    error_message = "broker_volume_gb must be 20-16384."
  }
}

variable "kafka_port" {
  type        = number
  description = "Port of the PLAINTEXT Kafka listener (and of the load balancer)."
  default     = 9092
}

variable "tls_listener" {
  type = object({
    port           = optional(number, 9093)
    cert_parameter = string
    key_parameter  = string
  })
  description = "A second, SSL Kafka listener: its port and the SSM parameters of its PEM certificate chain and key. null: none."
  default     = null
}

variable "admin_port" {
  type        = number
  description = "Port of the brokers' admin HTTP server (/metrics, /health)."
  default     = 9644
}

variable "meta_lease_seconds" {
  type        = number
  description = "TTL of a broker's etcd lease: failover takes this plus a second or two."
  default     = 6
}

variable "cache_memory_bytes" {
  type        = number
  description = "Memory tier of each broker's read cache."
  default     = 268435456
}
