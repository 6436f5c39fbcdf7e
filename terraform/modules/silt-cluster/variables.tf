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
    condition     = length(var.subnet_ids) > 0 && length(distinct(var.subnet_ids)) == length(var.subnet_ids) && alltrue([for s in var.subnet_ids : can(regex("^subnet-[a-f0-9]+$", s))])
    error_message = "subnet_ids must be one or more distinct subnet ids (subnet-...)."
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
    condition     = length(distinct(var.load_balancer_subnet_ids)) == length(var.load_balancer_subnet_ids) && alltrue([for s in var.load_balancer_subnet_ids : can(regex("^subnet-[a-f0-9]+$", s))])
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
  description = "Tags of every resource (the broker instances and volumes too, through the launch template and the autoscaling group)."
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags keys must be 1-128 characters, not starting with aws:, and values at most 256 characters."
  }
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
  description = <<-EOT
    KMS key encrypting the bucket and the EBS volumes; null: SSE-S3 and the AWS managed EBS key. Its key
    policy must let the account's IAM policies grant its use and allow the service-linked role
    AWSServiceRoleForAutoScaling to use it (kms:CreateGrant, Decrypt, GenerateDataKey*, ReEncrypt*,
    DescribeKey), or the autoscaling group cannot launch brokers with encrypted volumes.
  EOT
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
    condition     = alltrue([for e in var.etcd_endpoints : can(regex("^[A-Za-z0-9.-]+:[0-9]{1,5}$", e)) && try(tonumber(split(":", e)[1]) <= 65535, false)])
    error_message = "etcd_endpoints must be HOST:PORT entries."
  }
}

variable "etcd_security_group_id" {
  type        = string
  description = "With etcd_endpoints: the security group of the existing etcd, which the module opens to the brokers on 2379."
  default     = null

  validation {
    condition     = var.etcd_security_group_id == null ? length(var.etcd_endpoints) == 0 : length(var.etcd_endpoints) > 0 && can(regex("^sg-[a-f0-9]+$", var.etcd_security_group_id))
    error_message = "etcd_endpoints need etcd_security_group_id (sg-...), and only they."
  }
}

variable "etcd_root" {
  type        = string
  description = "Key prefix of the cluster in etcd; null: the cluster name."
  default     = null

  validation {
    condition     = var.etcd_root == null || can(regex("^[A-Za-z0-9._-]+$", var.etcd_root))
    error_message = "etcd_root must be letters, digits, '.', '_' or '-'."
  }
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

  validation {
    # A conditional, not ||: Terraform before 1.12 evaluates both sides.
    condition = var.etcd_tls == null ? true : alltrue([
      for p in compact(values(var.etcd_tls)) : can(regex("^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", p))
    ])
    error_message = "etcd_tls values must be SSM parameter names."
  }

  validation {
    condition = (var.etcd_tls == null || length(var.etcd_endpoints) > 0 ? true :
    try(var.etcd_tls.server_cert_parameter != null && var.etcd_tls.server_key_parameter != null, false))
    error_message = "etcd run by the module needs etcd_tls.server_cert_parameter and server_key_parameter."
  }
}

variable "etcd_node_count" {
  type        = number
  description = "Members of the etcd the module runs, spread over subnet_ids."
  default     = 3

  validation {
    condition     = contains([1, 3, 5], var.etcd_node_count)
    error_message = "etcd_node_count must be 1, 3 or 5."
  }

  # A zone's outage must not take the quorum: as many zones as members, up to 3.
  validation {
    condition     = length(var.etcd_endpoints) > 0 || length(var.subnet_ids) >= min(var.etcd_node_count, 3)
    error_message = "etcd run by the module needs subnet_ids in at least min(etcd_node_count, 3) zones."
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
  description = "Instance type of the etcd members (of architecture, checked at plan)."
  default     = "t4g.medium"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.etcd_instance_type))
    error_message = "etcd_instance_type must be an EC2 instance type like t4g.medium."
  }
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

  validation {
    condition     = can(regex("^3\\.[4-9]\\.[0-9]+$", var.etcd_version))
    error_message = "etcd_version must be 3.4.x or later, like 3.5.17."
  }
}

variable "etcd_sha256" {
  type        = string
  description = "SHA-256 of the etcd release tarball (for etcd_version and architecture); null: not checked."
  default     = null

  validation {
    condition     = var.etcd_sha256 == null || can(regex("^[a-f0-9]{64}$", var.etcd_sha256))
    error_message = "etcd_sha256 must be 64 lowercase hex digits."
  }
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

  validation {
    condition     = can(regex("^https://[^[:space:]'\"\\\\]+$", var.silt_release_url))
    error_message = "silt_release_url must be an https:// URL without spaces or quotes."
  }
}

variable "silt_sha256" {
  type        = string
  description = "SHA-256 of the tarball at silt_release_url (64 lowercase hex digits), checked before it is installed."
  nullable    = false

  validation {
    condition     = can(regex("^[a-f0-9]{64}$", var.silt_sha256))
    error_message = "silt_sha256 must be 64 lowercase hex digits."
  }
}

variable "broker_instance_type" {
  type        = string
  description = "Instance type of the brokers (of architecture, checked at plan)."
  default     = "m7g.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.broker_instance_type))
    error_message = "broker_instance_type must be an EC2 instance type like m7g.large."
  }
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

  validation {
    condition     = var.kafka_port >= 1024 && var.kafka_port <= 65535 && floor(var.kafka_port) == var.kafka_port
    error_message = "kafka_port must be a whole number from 1024 to 65535."
  }
}

variable "tls_listener" {
  type = object({
    port           = optional(number, 9093)
    cert_parameter = string
    key_parameter  = string
  })
  description = "A second, SSL Kafka listener: its port and the SSM parameters of its PEM certificate chain and key. null: none."
  default     = null

  validation {
    condition     = var.tls_listener == null || try(var.tls_listener.port >= 1024 && var.tls_listener.port <= 65535 && var.tls_listener.port != var.kafka_port, false)
    error_message = "tls_listener.port must be 1024-65535 and differ from kafka_port."
  }

  validation {
    condition     = var.tls_listener == null || try(alltrue([for p in [var.tls_listener.cert_parameter, var.tls_listener.key_parameter] : can(regex("^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", p))]), false)
    error_message = "tls_listener.cert_parameter and key_parameter must be SSM parameter names."
  }
}

variable "admin_port" {
  type        = number
  description = "Port of the brokers' admin HTTP server (/metrics, /health)."
  default     = 9644

  validation {
    condition     = var.admin_port >= 1024 && var.admin_port <= 65535 && var.admin_port != var.kafka_port && (var.tls_listener == null || try(var.tls_listener.port != var.admin_port, true))
    error_message = "admin_port must be 1024-65535 and differ from the Kafka ports."
  }
}

variable "meta_lease_seconds" {
  type        = number
  description = "TTL of a broker's etcd lease: failover takes this plus a second or two."
  default     = 6

  validation {
    condition     = var.meta_lease_seconds >= 2 && var.meta_lease_seconds <= 60 && floor(var.meta_lease_seconds) == var.meta_lease_seconds
    error_message = "meta_lease_seconds must be a whole number from 2 to 60."
  }
}

variable "cache_memory_bytes" {
  type        = number
  description = "Memory tier of each broker's read cache, in bytes (leave room for the rest of the broker in broker_instance_type's memory)."
  default     = 268435456

  validation {
    condition     = var.cache_memory_bytes >= 16777216 && floor(var.cache_memory_bytes) == var.cache_memory_bytes
    error_message = "cache_memory_bytes must be a whole number of bytes, at least 16 MiB."
  }
}
