# Kafka for the pipeline: provisioned MSK, unless kafka_bootstrap names a cluster.
#
# Why provisioned MSK with a plaintext listener, not MSK Serverless: Serverless accepts
# only IAM-authenticated TLS clients, and the processes' Kafka client speaks plaintext
# (KafkaSettings builds kafka:// URLs, with no TLS or SASL settings). Plaintext stays
# inside the VPC's private subnets, and the brokers' security group admits the reader
# and worker tasks alone (security.tf). The brokers encrypt their disks with the
# platform's key and talk to each other over TLS. Moving the clients to TLS (port 9094,
# already open on the brokers side by TLS_PLAINTEXT) needs an SSL context in the app.

resource "aws_msk_configuration" "kafka" {
  count = local.create_msk ? 1 : 0

  name           = var.name
  kafka_versions = [var.msk_kafka_version]
  # The processes declare their topics (topic_specs) with KAFKA_REPLICATION_FACTOR;
  # nothing should appear by a typo. One replica may be down without stopping writes.
  # Kafka's internal topics follow the broker count (3 replicas need 3 brokers).
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=${local.msk_replicas}
    min.insync.replicas=${max(1, local.msk_replicas - 1)}
    offsets.topic.replication.factor=${local.msk_replicas}
    transaction.state.log.replication.factor=${local.msk_replicas}
    transaction.state.log.min.isr=${max(1, local.msk_replicas - 1)}
    unclean.leader.election.enable=false
  PROPERTIES
}

resource "aws_msk_cluster" "kafka" {
  #checkov:skip=CKV_AWS_81:The clients speak plaintext (no TLS or SASL in the app's Kafka settings); TLS_PLAINTEXT keeps TLS open for clients that can, inside private subnets reachable from the reader and worker tasks only.
  count = local.create_msk ? 1 : 0

  cluster_name           = var.name
  kafka_version          = var.msk_kafka_version
  number_of_broker_nodes = local.msk_brokers

  broker_node_group_info {
    instance_type   = var.msk_instance_type
    client_subnets  = aws_subnet.private[*].id
    security_groups = [aws_security_group.msk[0].id]

    storage_info {
      ebs_storage_info {
        volume_size = var.msk_volume_gib
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.kafka[0].arn
    revision = aws_msk_configuration.kafka[0].latest_revision
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = aws_kms_key.data.arn

    encryption_in_transit {
      client_broker = "TLS_PLAINTEXT"
      in_cluster    = true
    }
  }

  # Unauthenticated: the only way in is the security group (see above).
  client_authentication {
    unauthenticated = true
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.msk[0].name
      }
    }
  }
}
