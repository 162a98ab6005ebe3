/**
 * Cluster routing for the proxy's transaction mode: routing tables per database and a pool per member
 * (cluster-router.ts), the table's wire form (routing-table.ts) and where a unit goes (unit-route.ts).
 */
export {
  ClusterRouter,
  type ClusterRouterOptions,
  type MemberView,
  NoMemberError,
  type RefreshReason,
  type RoutedLent,
  type RoutingObserver,
  type RoutingRefused,
  type RoutingView,
} from './cluster-router.ts';
export { MEMBER_ROLES, type MemberRole, type RoutingTable } from './routing-table.ts';
export { type UnitAccess, type UnitRoute, unitRoute } from './unit-route.ts';
