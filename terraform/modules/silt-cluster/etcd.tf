# etcd run by the module (unless etcd_endpoints names an existing one): one
# member per subnet in turn, each with a fixed private IP (so the member
# list is known at apply time) and its own data volume, which outlives the
# instance.

locals {
  etcd_nodes = {
    for i in range(local.managed_etcd ? var.etcd_node_count : 0) : "${module.config.names.etcd}-${i + 1}" => {
      subnet_id         = var.subnet_ids[i % length(var.subnet_ids)]
      availability_zone = data.aws_subnet.this[var.subnet_ids[i % length(var.subnet_ids)]].availability_zone
      private_ip        = cidrhost(data.aws_subnet.this[var.subnet_ids[i % length(var.subnet_ids)]].cidr_block, var.etcd_host_number + i)
    }
  }
}

resource "aws_ebs_volume" "etcd" {
  for_each          = local.etcd_nodes
  availability_zone = each.value.availability_zone
  type              = "gp3"
  size              = var.etcd_volume_gb
  encrypted         = true
  kms_key_id        = var.kms_key_arn
  tags              = merge(var.tags, { Name = each.key })

  # A new key would replace every member's volume at once, with etcd's data:
  # re-keying them is an operator action, one member at a time.
  lifecycle {
    ignore_changes = [kms_key_id]
  }
}

resource "aws_instance" "etcd" {
  for_each                    = local.etcd_nodes
  ami                         = local.ami_id
  instance_type               = var.etcd_instance_type
  subnet_id                   = each.value.subnet_id
  private_ip                  = each.value.private_ip
  associate_public_ip_address = false
  vpc_security_group_ids      = [aws_security_group.this["etcd"].id]
  iam_instance_profile        = aws_iam_instance_profile.this["etcd"].name
  user_data                   = module.config.etcd_user_data[each.key]
  monitoring                  = true
  ebs_optimized               = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    encrypted   = true
    kms_key_id  = var.kms_key_arn
  }

  tags = merge(var.tags, { Name = each.key, "silt:cluster" = var.name, "silt:role" = "etcd" })

  # Replacing members is a rolling operator action (terraform apply
  # -replace=...), one at a time, never all three for a new AMI.
  lifecycle {
    ignore_changes = [ami, user_data]

    precondition {
      condition     = contains(data.aws_ec2_instance_type.this[var.etcd_instance_type].supported_architectures, var.architecture)
      error_message = "etcd_instance_type does not run ${var.architecture} (see architecture)."
    }
  }
}

# Created after the instance: its user data waits for the device. On
# replacement the instance is stopped first, so etcd's filesystem is
# unmounted cleanly before the volume moves to the new instance.
resource "aws_volume_attachment" "etcd" {
  for_each                       = local.etcd_nodes
  device_name                    = "/dev/sdf"
  volume_id                      = aws_ebs_volume.etcd[each.key].id
  instance_id                    = aws_instance.etcd[each.key].id
  stop_instance_before_detaching = true
}
