//! How the HTTP API and the `Operator` service reach the coordinator: directly when it
//! runs in this process, over the gRPC `Operator` service when it runs elsewhere.

use super::coordinator_task::{CoordHandle, DrainAnswer};
use super::transport::Dialer;
use crate::wire::pb;
use crate::wire::pb::operator_client::OperatorClient;
use ebbtide_model::NodeStatus;
use std::time::Duration;
use tonic::transport::Channel;

/// Why a request to the coordinator failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The coordinator cannot be reached (or is gone).
    Unavailable(String),
    /// It refused the request as invalid.
    Invalid(String),
    /// It refused the request as larger than its limits (`RESOURCE_EXHAUSTED`,
    /// `OUT_OF_RANGE`).
    TooLarge(String),
    /// It failed for another reason.
    Internal(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unavailable(m)
            | CallError::Invalid(m)
            | CallError::TooLarge(m)
            | CallError::Internal(m) => f.write_str(m),
        }
    }
}

/// The way to the coordinator.
#[derive(Clone, Debug)]
pub enum CoordAccess {
    /// It runs in this process.
    Local(CoordHandle),
    /// It runs on node `node`, whose gRPC address is `address`.
    Remote {
        node: String,
        address: String,
        client: Box<OperatorClient<Channel>>,
    },
}

impl CoordAccess {
    /// A way to the coordinator on `node` at gRPC `address`.
    pub fn remote(dialer: &Dialer, node: &str, address: &str) -> Result<Self, String> {
        let ch = dialer.channel(node, address, Duration::from_secs(5))?;
        Ok(CoordAccess::Remote {
            node: node.to_owned(),
            address: address.to_owned(),
            client: Box::new(OperatorClient::new(ch)),
        })
    }

    fn gone() -> CallError {
        CallError::Unavailable("the coordinator in this process has stopped".into())
    }

    fn status(&self, s: tonic::Status) -> CallError {
        let (node, address) = match self {
            CoordAccess::Local(_) => ("?", "?"),
            CoordAccess::Remote { node, address, .. } => (node.as_str(), address.as_str()),
        };
        let msg = format!(
            "coordinator {node} at {address}: {}: {}",
            s.code(),
            s.message()
        );
        match s.code() {
            tonic::Code::InvalidArgument => CallError::Invalid(s.message().to_owned()),
            tonic::Code::Internal => CallError::Internal(msg),
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange => CallError::TooLarge(msg),
            _ => CallError::Unavailable(msg),
        }
    }

    fn decode(e: crate::wire::DecodeError) -> CallError {
        CallError::Internal(format!("bad answer from the coordinator: {e}"))
    }

    /// DrainNode(node).
    pub async fn drain(&self, node: String) -> Result<DrainAnswer, CallError> {
        match self {
            CoordAccess::Local(h) => h.drain(node).await.map_err(|_| Self::gone()),
            CoordAccess::Remote { client, .. } => {
                let r = client
                    .as_ref()
                    .clone()
                    .drain_node(pb::DrainNodeRequest {
                        node_id: node.clone(),
                    })
                    .await
                    .map_err(|s| self.status(s))?;
                r.into_inner().into_core(&node).map_err(Self::decode)
            }
        }
    }

    /// What DrainNode(node) would answer now.
    pub async fn drain_status(&self, node: String) -> Result<DrainAnswer, CallError> {
        match self {
            CoordAccess::Local(h) => h.drain_status(node).await.map_err(|_| Self::gone()),
            CoordAccess::Remote { client, .. } => {
                let r = client
                    .as_ref()
                    .clone()
                    .drain_status(pb::DrainNodeRequest {
                        node_id: node.clone(),
                    })
                    .await
                    .map_err(|s| self.status(s))?;
                r.into_inner().into_core(&node).map_err(Self::decode)
            }
        }
    }

    /// Every member.
    pub async fn nodes(&self) -> Result<Vec<NodeStatus<String>>, CallError> {
        match self {
            CoordAccess::Local(h) => h.nodes().await.map_err(|_| Self::gone()),
            CoordAccess::Remote { client, .. } => {
                let r = client
                    .as_ref()
                    .clone()
                    .list_nodes(pb::ListNodesRequest {})
                    .await
                    .map_err(|s| self.status(s))?;
                r.into_inner().into_core().map_err(Self::decode)
            }
        }
    }

    /// Every work unit and where it runs.
    pub async fn list_work(&self) -> Result<pb::ListWorkResponse, CallError> {
        match self {
            CoordAccess::Local(h) => h.list_work().await.map_err(|_| Self::gone()),
            CoordAccess::Remote { client, .. } => Ok(client
                .as_ref()
                .clone()
                .list_work(pb::ListWorkRequest {})
                .await
                .map_err(|s| self.status(s))?
                .into_inner()),
        }
    }

    /// Adds work units (ids already checked non-empty).
    pub async fn add_units(&self, units: Vec<String>) -> Result<(), CallError> {
        match self {
            CoordAccess::Local(h) => match h.add_units(units).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(CallError::Internal(e)),
                Err(_) => Err(Self::gone()),
            },
            CoordAccess::Remote { client, .. } => {
                client
                    .as_ref()
                    .clone()
                    .add_work(pb::AddWorkRequest { work_ids: units })
                    .await
                    .map_err(|s| self.status(s))?;
                Ok(())
            }
        }
    }

    /// Owner resign: the coordinator gives up leadership.
    pub async fn resign(&self) -> Result<(), CallError> {
        match self {
            CoordAccess::Local(h) => h.resign().await.map_err(|_| Self::gone()),
            CoordAccess::Remote { client, .. } => {
                client
                    .as_ref()
                    .clone()
                    .resign(pb::ResignRequest {})
                    .await
                    .map_err(|s| self.status(s))?;
                Ok(())
            }
        }
    }
}
